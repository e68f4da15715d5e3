"""Which database a source reads and what it selects: the URL, its secrets and the SQL.

The password (and a URL holding one) is read from the environment here, at connect
time only. The source's name in logs, ``raw.load_log`` and errors is the URL without
password and parameters (``postgresql://user@host:5432/db#schema.table``); every text
shown is passed through :meth:`Target.mask` first. Streaming the rows is
``orchestration/ingest/database/read.py``; error texts are ``orchestration/ingest/database/errors.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, urlencode

from sqlalchemy.engine import URL, make_url

from orchestration.io.config import ConfigError, SourceConfig, parse_url
from orchestration.io.sql import ident

POSTGRES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Target:
    """A resolved database source. ``url`` holds the password: never show it."""

    url: URL = field(repr=False)
    name: str  # redacted, e.g. postgresql://user@host:5432/db#public.transactions
    sql: str
    relation: str | None  # the quoted table (None for a `query:`)
    secrets: tuple[str, ...] = field(repr=False)
    password_from: str | None  # where the password came from, for error hints
    connect_timeout: int
    batch_rows: int
    # Bound parameters of ``sql`` (``:name``), SQLAlchemy path only; the PostgreSQL path
    # gets its values as literals in the SQL.
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_postgres(self) -> bool:
        return self.url.drivername in POSTGRES

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def with_sql(
        self, sql: str, params: Mapping[str, object] | None = None, name: str | None = None
    ):
        """The same connection running other SQL (and shown as ``name``)."""
        return dataclasses.replace(self, sql=sql, params=dict(params or {}), name=name or self.name)


def resolve(cfg: SourceConfig, source: str, environ: Mapping[str, str] | None = None) -> Target:
    """The URL with its password from the environment, the redacted name and the SQL."""
    db = cfg.database
    assert db is not None
    env = os.environ if environ is None else environ
    password_from = None
    if db.url_env:
        text = env.get(db.url_env)
        if not text:
            raise ConfigError(
                f"{source}.database.url_env: the environment variable {db.url_env} is not set"
            )
        try:
            url = parse_url(text, f"the value of the environment variable {db.url_env}")
        except ValueError as exc:
            raise ConfigError(f"{source}.database.url_env: {exc}") from None
        if url.password is not None:
            password_from = f"the URL in the environment variable {db.url_env}"
    else:
        url = make_url(db.url)
    if db.password_env:
        password = env.get(db.password_env)
        if password is None:
            raise ConfigError(
                f"{source}.database.password_env: the environment variable {db.password_env} "
                "is not set"
            )
        url = url.set(password=password)
        password_from = f"the environment variable {db.password_env}"
    plain = [url.password or "", *as_tuple(url.query.get("password", ()))]
    secrets = {v for p in plain if p for v in (p, quote(p, safe=""), quote_plus(p))}
    # URL.create, not url.set(password=None): set() takes None as "leave unchanged".
    port = url.port or (5432 if url.drivername in POSTGRES and url.host else None)
    shown = URL.create(url.drivername, url.username, None, url.host, port, url.database)
    name = f"{shown.render_as_string(hide_password=False)}#{cfg.table or 'query'}"
    relation = quoted(url, cfg.table) if cfg.table is not None else None
    return Target(
        url=url,
        name=name,
        # A trailing semicolon would break the COPY (...) the PostgreSQL driver wraps it in.
        sql=f"select * from {relation}" if relation else (cfg.query or "").strip().rstrip(";"),
        relation=relation,
        secrets=tuple(sorted(secrets, key=len, reverse=True)),
        password_from=password_from,
        connect_timeout=db.connect_timeout,
        batch_rows=db.batch_rows,
    )


def quoted(url: URL, name: str, dotted: bool = True) -> str:
    """A ``[schema.]table`` (each dotted part) or a column (``dotted=False``), quoted as
    written for the database's dialect (no SQL injection)."""
    parts = name.split(".") if dotted else [name]
    quote_one = ident
    if url.drivername not in POSTGRES:
        from sqlalchemy.dialects import registry

        # An unknown dialect keeps the default quoting: the connect step reports it.
        with contextlib.suppress(Exception):
            dialect = registry.load(url.get_backend_name())()
            quote_one = dialect.identifier_preparer.quote_identifier
    return ".".join(quote_one(part) for part in parts)


def libpq_uri(target: Target) -> str:
    """The libpq URI with the password; percent-encoded as libpq decodes it (SQLAlchemy's
    rendering leaves spaces, which libpq rejects)."""
    url = target.url
    auth = quote(url.username or "", safe="")
    if url.password is not None:
        auth += ":" + quote(url.password, safe="")
    host = f"[{url.host}]" if url.host and ":" in url.host else (url.host or "")
    port = f":{url.port}" if url.port else ""
    params = [(k, v) for k, values in url.query.items() for v in as_tuple(values)]
    if "connect_timeout" not in url.query:
        params.append(("connect_timeout", str(target.connect_timeout)))
    database = quote(url.database or "", safe="")
    auth = f"{auth}@" if auth else ""
    return f"postgresql://{auth}{host}{port}/{database}?{urlencode(params, quote_via=quote)}"


def as_tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)
