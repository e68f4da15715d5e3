"""The config of the sources: files or a database, their canonical columns, the inbox.

Split from ``config.py`` (which holds the whole project's config and re-exports these
names); see its docstring for how paths and credentials are read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from orchestration.io.config_checks import check_date_format, check_paths

FileFormat = Literal["csv", "parquet", "whitespace", "fixed_width"]

# Canonical columns (docs/data_contract.md). Values are the column types the ingest produces.
TRANSACTION_COLUMNS = {
    "customer_id": "VARCHAR",
    "order_id": "VARCHAR",
    "ordered_at": "TIMESTAMP",
    "quantity": "DOUBLE",
    "unit_price": "DOUBLE",
    "amount": "DOUBLE",
    "product_id": "VARCHAR",
    "category": "VARCHAR",
    "country": "VARCHAR",
    "channel": "VARCHAR",
}
CUSTOMER_COLUMNS = {
    "customer_id": "VARCHAR",
    "signup_at": "TIMESTAMP",
    "birth_year": "INTEGER",
    "age": "INTEGER",
    "gender": "VARCHAR",
    "region": "VARCHAR",
}
EVENT_COLUMNS = {
    "customer_id": "VARCHAR",
    "event_at": "TIMESTAMP",
    "event_type": "VARCHAR",
}
CANONICAL = {
    "transactions": TRANSACTION_COLUMNS,
    "customers": CUSTOMER_COLUMNS,
    "events": EVENT_COLUMNS,
}
REQUIRED = {
    "transactions": ("customer_id", "ordered_at"),
    "customers": ("customer_id",),
    "events": ("customer_id", "event_at"),
}


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class DatabaseConfig(BaseModel):
    """Where a database source connects: a URL without its password, or the name of an
    environment variable holding the whole URL; the password only ever comes from the
    environment (``password_env``, or inside ``url_env``'s value)."""

    model_config = ConfigDict(extra="forbid")

    # e.g. postgresql://user@host:5432/db (libpq URI: ADBC driver); any other SQLAlchemy URL
    # (mysql+pymysql://..., sqlite:////abs/path.db) goes through SQLAlchemy with its own driver.
    url: str | None = None
    url_env: str | None = Field(default=None, pattern=ENV_NAME)
    password_env: str | None = Field(default=None, pattern=ENV_NAME)
    connect_timeout: int = Field(default=10, ge=1, le=600)  # seconds (PostgreSQL)
    batch_rows: int = Field(default=100_000, ge=1)  # rows per Arrow batch into DuckDB

    @model_validator(mode="after")
    def _check(self) -> DatabaseConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError(
                "database needs exactly one of `url` (without the password) and `url_env` "
                "(the name of an environment variable holding the URL)"
            )
        if self.url is not None:
            url = parse_url(self.url, "database.url")
            if url.password is not None or "password" in url.query:
                raise ValueError(
                    "database.url must not contain a password: name the environment variable "
                    "that holds it in `password_env` (or put the whole URL in one and use `url_env`)"
                )
        return self


def parse_url(text: str, where: str) -> URL:
    """A SQLAlchemy URL; the error never repeats ``text`` (it may hold a password)."""
    try:
        return make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError(
            f"{where} is not a database URL like postgresql://user@host:5432/dbname"
        ) from None


class InboxConfig(BaseModel):
    """A folder new transaction files are dropped into (same format and columns as
    ``path``). The sensor ``inbox_sensor`` loads each new file once, incrementally; a full
    load reads the configured files and then every inbox file."""

    model_config = ConfigDict(extra="forbid")

    path: str  # a folder, relative to data_root
    pattern: str = "*"  # glob of the files in it; hidden and *.tmp / *.part files never match
    # Files modified more recently than this are still being written: left for the next look.
    settle_seconds: float = Field(default=2.0, ge=0)


class IncrementalConfig(BaseModel):
    """A database table loaded incrementally by a high-water mark: ``database_sensor``
    loads the rows whose ``column`` is above the largest value loaded so far (the mark),
    each row once (docs/database_source.md)."""

    model_config = ConfigDict(extra="forbid")

    # A column of the table (as named there) whose value only grows for new rows:
    # an identity id, or a timestamp set when the row is written.
    column: str = Field(min_length=1)


# Keys that only mean something for files; a database source must not set them.
FILE_ONLY = ("format", "delimiter", "quote", "encoding", "header", "widths", "max_line_size")
FILE_ONLY += ("inbox",)


class SourceConfig(BaseModel):
    """One input: a file (or glob) and how to read it, or a database table or query."""

    model_config = ConfigDict(extra="forbid")

    path: str | list[str] | None = None
    # Database source: `database` with exactly one of `table` ([schema.]name, quoted as
    # given) and `query` (a SELECT); no `path`.
    database: DatabaseConfig | None = None
    table: str | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)
    format: FileFormat | None = None  # inferred from the extension when omitted
    delimiter: str | None = None  # csv only; sniffed when omitted
    quote: str = '"'  # csv only
    encoding: str = "utf-8"
    header: bool = True
    # canonical name -> the user's column name
    columns: dict[str, str] = Field(default_factory=dict)
    # fixed_width only: column name -> [start, end) 1-based character positions
    widths: dict[str, tuple[int, int]] | None = None
    date_format: str | None = None  # strptime format for date columns; ISO when omitted
    # Dates before it are quarantined ("date before 1900-01-01 ..."): a year-1 or BC date is
    # a typo or a placeholder, and later steps cannot hold years before 1 (Python dates).
    earliest_date: dt.date = dt.date(1900, 1, 1)
    cancellation_prefix: str | None = None  # order ids starting with it are cancellations
    # Lines equal on every canonical column are dropped as duplicates (dbt keeps the first);
    # false for sources whose identical lines are real repeat purchases.
    drop_exact_duplicates: bool = True
    # More strptime formats, tried in order after `date_format` (first that parses wins);
    # e.g. ["%Y-%m-%d", "%d/%m/%Y"] for a file that mixes ISO and day-first dates.
    date_formats: list[str] | None = None
    # false (default): a unit_price below 0, or of 0 on a line with a positive quantity, is
    # quarantined ("non-positive unit_price"). Applies only when unit_price is mapped.
    allow_non_positive_price: bool = False
    # Canonical columns that identify a line (e.g. [order_id, product_id]); a later line with
    # the same key but different values is quarantined ("duplicate key (...)"). Exact repeats
    # are not: drop_exact_duplicates decides about them. None: no key check.
    unique_key: list[str] | None = None
    # csv / line-based readers: longest accepted line in bytes (DuckDB's own default is 2 MB).
    max_line_size: int = Field(default=64 * 1024 * 1024, gt=0)
    # transactions only: a folder of new files, e.g. `inbox: inbox/transactions` or
    # `inbox: {path: inbox, pattern: "*.csv"}`.
    inbox: InboxConfig | None = None
    # transactions from a database `table` only: e.g. `incremental: {column: id}`.
    incremental: IncrementalConfig | None = None

    @field_validator("inbox", mode="before")
    @classmethod
    def _inbox_shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    _path = field_validator("path")(check_paths)

    @field_validator("date_format", "date_formats")
    @classmethod
    def _date_formats(cls, value: str | list[str] | None) -> str | list[str] | None:
        for fmt in [value] if isinstance(value, str) else value or []:
            check_date_format(fmt)
        return value

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if self.format == "fixed_width" and not self.widths:
            raise ValueError("format fixed_width needs `widths: {column: [start, end]}`")
        if self.incremental is not None and self.table is None:
            raise ValueError(
                "`incremental` needs a database source with `table:` (a `query:` cannot be "
                "filtered by a high-water mark)"
            )
        if self.database is None:
            if self.table is not None or self.query is not None:
                raise ValueError("`table` and `query` need a `database:` (url or url_env)")
            if self.path is None:
                raise ValueError("a source needs `path` (files) or `database` (a SQL database)")
            return self
        if self.path is not None:
            raise ValueError("a source has either `path` or `database`, not both")
        if (self.table is None) == (self.query is None):
            raise ValueError("a database source needs exactly one of `table` and `query`")
        file_only = sorted(set(FILE_ONLY) & self.model_fields_set)
        if file_only:
            raise ValueError(f"{file_only} apply to files only, not to a database source")
        return self
