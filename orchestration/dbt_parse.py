"""The parsed dbt project a run's builds share: parsed once per process, re-parsed partially.

Every dbt build of a run (the features, the two churn cut-offs, the marts) runs in this
process on a parsed manifest (``dbtRunner(manifest=...)``), so dbt parses the project at
most once per schema suffix and run instead of once per build. The parse sees only the
vars that shape the manifest: the cut-off schema suffix (``generate_schema_name``) and the
warehouse file's name (dbt-duckdb names the database after it). Every other var (as-of
date, horizons, thresholds, the warehouse's folder, DuckDB's memory limit) is read when
dbt compiles the SQL or opens the connection, so it is given to the build, not the parse.

Because the parse-time vars and the profile do not change between runs, dbt's own
partial parsing (``partial_parse.msgpack`` in the parse's target folder) serves later
runs in the same workdir; dbt checks every project file against it and parses again
what changed. ``custseg parse`` (``make install``) also leaves one per suffix under
``dbt_project/target/parse/``, which a new workdir starts from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestration.dbt import DBT_PROJECT_DIR, parse_project, project_mtime

PRODUCTION = ""  # the schema suffix of the production build
# The cut-off builds' suffixes (orchestration/cutoffs.py names them cutoff_<name>).
SEEDED_SUFFIXES = (PRODUCTION, "_cutoff_train", "_cutoff_eval")
PARSE_ONLY_FOLDER = "parse_only"  # never opened: a parse does not connect
_STATE_FILE = "partial_parse.msgpack"
_CACHE: dict[tuple, object] = {}
_MAX_CACHED = 6


def _label(suffix: str) -> str:
    return suffix.lstrip("_") or "production"


def parse_vars(suffix: str, warehouse_name: str = "warehouse.duckdb") -> dict:
    """The vars a parse sees: the only two that change what dbt puts in the manifest."""
    out: dict = {"warehouse_path": f"{PARSE_ONLY_FOLDER}/{warehouse_name}"}
    if suffix:
        out["cutoff_schema_suffix"] = suffix
    return out


def _parse(target: Path, suffix: str, warehouse_name: str):
    target.mkdir(parents=True, exist_ok=True)
    extra = ("--log-path", str(target), "--vars", json.dumps(parse_vars(suffix, warehouse_name)))
    result = parse_project(target, write_json=False, extra=extra)
    if not result.success:
        raise RuntimeError(f"dbt parse of {DBT_PROJECT_DIR} failed: {result.error}")
    return result.result


def parsed_manifest(
    workdir: Path, suffix: str = PRODUCTION, warehouse_name: str = "warehouse.duckdb"
):
    """The project parsed for builds with schema suffix ``suffix``, cached in this process.

    dbt's partial-parse state lives in ``<workdir>/dbt/parse/<label>/``; when that is
    missing, the one ``custseg parse`` left in ``dbt_project/target/parse/`` is copied in
    (dbt parses in full when it no longer matches the project). The process cache is
    keyed by the folder and the newest project file's time, so an edited project is
    parsed again.
    """
    target = Path(workdir) / "dbt" / "parse" / _label(suffix)
    key = (str(target.resolve()), suffix, warehouse_name, project_mtime())
    if key not in _CACHE:
        seed = DBT_PROJECT_DIR / "target" / "parse" / _label(suffix) / _STATE_FILE
        if (
            not (target / _STATE_FILE).exists()
            and seed.exists()
            and warehouse_name == "warehouse.duckdb"
        ):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seed, target / _STATE_FILE)
        if len(_CACHE) >= _MAX_CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _parse(target, suffix, warehouse_name)
    return _CACHE[key]


def seed_parse_states() -> list[Path]:
    """Parse once per suffix into ``dbt_project/target/parse/`` (``custseg parse``)."""
    out = []
    for suffix in SEEDED_SUFFIXES:
        target = DBT_PROJECT_DIR / "target" / "parse" / _label(suffix)
        _parse(target, suffix, "warehouse.duckdb")
        out.append(target / _STATE_FILE)
    return out
