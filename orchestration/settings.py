"""The one place that reads the environment (database passwords aside, see below).

Everything else receives a :class:`Settings` (or the Dagster resources built
from it). Variables (``.env.example`` lists them with examples):

``CUSTSEG_ENV``          ``dev`` (default) or ``prod``
``CUSTSEG_WORKDIR``      where the warehouse, models, reports (and by default the exports)
                         live (default ``.custseg``; required in ``prod``)
``CUSTSEG_CONFIG``       project config YAML; unset means the built-in demo data (dev
                         only: ``prod`` requires a config)
``CUSTSEG_DATA_ROOT``    overrides ``data_root`` of the config file
``CUSTSEG_EXPORT_DIR``   where the Power BI export is published (default
                         ``WORKDIR/exports``), e.g. a shared folder the gateway reads
``CUSTSEG_AS_OF_DATE``   ``YYYY-MM-DD``; unset means the day after the last transaction
``CUSTSEG_LOCK_TIMEOUT`` seconds a run waits for another run on the same workdir (600)
``CUSTSEG_DUCKDB_MEMORY_LIMIT`` DuckDB's memory limit for every connection of a run (ingest,
                         dbt, ML reads, export): ``3GB`` by default; DuckDB spills to
                         ``WORKDIR/warehouse.duckdb.tmp`` beyond it (DuckDB's own default,
                         80 % of RAM, let a 10M-line ingest reach 6.5 GB)
``CUSTSEG_DUCKDB_THREADS`` DuckDB's threads in every connection of a run: the cores plus
                         two by default (:func:`default_duckdb_threads`)

Power BI service refresh (optional; all five or none, see docs/powerbi.md):
``CUSTSEG_POWERBI_TENANT_ID``, ``CUSTSEG_POWERBI_CLIENT_ID``, ``CUSTSEG_POWERBI_CLIENT_SECRET``
(a service principal), ``CUSTSEG_POWERBI_WORKSPACE_ID``, ``CUSTSEG_POWERBI_SEMANTIC_MODEL_ID``;
``CUSTSEG_POWERBI_API_URL`` / ``CUSTSEG_POWERBI_AUTHORITY_URL`` for another cloud. The
secret is passed to Dagster by name (``dg.EnvVar``), never kept in a settings object.

``dev`` runs on local files and, without a config, on generated demo data. ``prod``
refuses to start without an explicit workdir and config, so a production deployment
never falls back to demo data by accident. Database passwords are named by the config
(``password_env`` / ``url_env``) and read only when the ingest connects
(``orchestration/ingest/database/target.py``), so they never sit in a settings object.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_WORKDIR = ".custseg"
WAREHOUSE_FILE = "warehouse.duckdb"  # the warehouse in the workdir
DEFAULT_MEMORY_LIMIT = "3GB"
# What DuckDB's memory_limit accepts: a size with a unit, or a share of the RAM.
_MEMORY_LIMIT = re.compile(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B|%)\s*", re.IGNORECASE)
ENVIRONMENTS = ("dev", "prod")


def default_duckdb_threads() -> int:
    """The cores this process may use, plus two: DuckDB's own default is the cores, but its
    threads also wait for memory pages and the disk, and two more keep the cores busy
    meanwhile (the dbt transaction models run faster on 2 cores with 4 threads; the
    figures are in benchmarks/README.md)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 2


class SettingsError(ValueError):
    """The environment variables do not make a usable configuration."""


AS_OF_SOURCE = "--as-of / CUSTSEG_AS_OF_DATE"


def parse_as_of(text: str | None) -> dt.date | None:
    """An as-of date ``YYYY-MM-DD`` (None or blank: the day after the last transaction)."""
    if text is None or not str(text).strip():
        return None
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise SettingsError(f"{AS_OF_SOURCE}: not a date YYYY-MM-DD: {text!r}") from None


@dataclass(frozen=True)
class Settings:
    workdir: str = DEFAULT_WORKDIR
    config_path: str | None = None
    data_root: str | None = None
    as_of_date: str | None = None
    lock_timeout: float = 600.0
    export_dir: str | None = None
    env: str = "dev"
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    duckdb_threads: int = field(default_factory=default_duckdb_threads)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ
        env = (e.get("CUSTSEG_ENV") or "dev").strip().lower()
        if env not in ENVIRONMENTS:
            raise SettingsError(f"CUSTSEG_ENV must be one of {ENVIRONMENTS}, got {env!r}")
        if env == "prod":
            missing = [v for v in ("CUSTSEG_WORKDIR", "CUSTSEG_CONFIG") if not e.get(v)]
            if missing:
                raise SettingsError(
                    f"CUSTSEG_ENV=prod needs {' and '.join(missing)}: production never runs "
                    "on the demo data or in a default folder (see .env.example)"
                )
        timeout = e.get("CUSTSEG_LOCK_TIMEOUT") or "600"
        try:
            lock_timeout = float(timeout)
        except ValueError:
            raise SettingsError(f"CUSTSEG_LOCK_TIMEOUT must be seconds, got {timeout!r}") from None
        memory_limit = e.get("CUSTSEG_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        if not _MEMORY_LIMIT.fullmatch(memory_limit):
            raise SettingsError(
                "CUSTSEG_DUCKDB_MEMORY_LIMIT must be a size such as 3GB, 512MB or 25%, "
                f"got {memory_limit!r}"
            )
        threads = (e.get("CUSTSEG_DUCKDB_THREADS") or "").strip()
        if threads and not (threads.isdigit() and int(threads) > 0):
            raise SettingsError(
                f"CUSTSEG_DUCKDB_THREADS must be a whole number of threads, got {threads!r}"
            )
        as_of = parse_as_of(e.get("CUSTSEG_AS_OF_DATE"))
        return cls(
            workdir=e.get("CUSTSEG_WORKDIR") or DEFAULT_WORKDIR,
            config_path=e.get("CUSTSEG_CONFIG") or None,
            data_root=e.get("CUSTSEG_DATA_ROOT") or None,
            as_of_date=as_of.isoformat() if as_of else None,
            lock_timeout=lock_timeout,
            export_dir=e.get("CUSTSEG_EXPORT_DIR") or None,
            env=env,
            duckdb_memory_limit=memory_limit.strip(),
            duckdb_threads=int(threads) if threads else default_duckdb_threads(),
        )

    def resolved(self) -> Settings:
        """Absolute paths, so the Dagster code location and dbt agree whatever their cwd."""

        def _abs(p: str | None) -> str | None:
            return str(Path(p).expanduser().resolve()) if p else None

        return replace(
            self,
            workdir=_abs(self.workdir) or DEFAULT_WORKDIR,
            config_path=_abs(self.config_path),
            data_root=_abs(self.data_root),
            export_dir=_abs(self.export_dir),
        )

    # Where a run keeps things: everything under the workdir but the export, which may be
    # published elsewhere (CUSTSEG_EXPORT_DIR).
    @property
    def warehouse_path(self) -> Path:
        return Path(self.workdir) / WAREHOUSE_FILE

    @property
    def exports_dir(self) -> Path:
        """Where the Power BI export is published: ``export_dir`` or ``WORKDIR/exports``."""
        return Path(self.export_dir) if self.export_dir else Path(self.workdir) / "exports"

    @property
    def demo_data_dir(self) -> Path:
        return Path(self.workdir) / "demo_data"


POWERBI_SECRET = "CUSTSEG_POWERBI_CLIENT_SECRET"
_POWERBI_REQUIRED = {
    "tenant_id": "CUSTSEG_POWERBI_TENANT_ID",
    "client_id": "CUSTSEG_POWERBI_CLIENT_ID",
    "workspace_id": "CUSTSEG_POWERBI_WORKSPACE_ID",
    "semantic_model_id": "CUSTSEG_POWERBI_SEMANTIC_MODEL_ID",
}
_POWERBI_OPTIONAL = {
    "api_url": "CUSTSEG_POWERBI_API_URL",
    "authority_url": "CUSTSEG_POWERBI_AUTHORITY_URL",
}


@dataclass(frozen=True)
class PowerBIServiceSettings:
    """Where to refresh the published semantic model; the secret stays in the environment."""

    tenant_id: str
    client_id: str
    workspace_id: str
    semantic_model_id: str
    api_url: str | None = None
    authority_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PowerBIServiceSettings | None:
        """None when no CUSTSEG_POWERBI_* variable is set; an error when only some are."""
        e = os.environ if environ is None else environ
        names = [*_POWERBI_REQUIRED.values(), POWERBI_SECRET]
        given = [n for n in names if (e.get(n) or "").strip()]
        if not given:
            return None
        missing = [n for n in names if n not in given]
        if missing:
            raise SettingsError(
                f"the Power BI refresh needs {', '.join(names)}; missing: {', '.join(missing)}"
            )
        values = {f: e[n].strip() for f, n in _POWERBI_REQUIRED.items()}
        values |= {
            f: e[n].strip() for f, n in _POWERBI_OPTIONAL.items() if (e.get(n) or "").strip()
        }
        return cls(**values)
