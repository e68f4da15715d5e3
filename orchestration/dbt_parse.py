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
``dbt_project/target/parse/``, which a new workdir starts from; a workdir's parse replaces
one that is older than the project files (an edit since ``custseg parse``), so the next new
workdir does not parse in full again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from orchestration.dbt import DBT_PROJECT_DIR, parse_project, project_mtime
from orchestration.settings import WAREHOUSE_FILE

PRODUCTION = ""  # the schema suffix of the production build
# The cut-off builds' suffixes (orchestration/cutoffs.py names them cutoff_<name>).
SEEDED_SUFFIXES = (PRODUCTION, "_cutoff_train", "_cutoff_eval")
PARSE_ONLY_FOLDER = "parse_only"  # never opened: a parse does not connect
SEED_ROOT = DBT_PROJECT_DIR / "target" / "parse"  # the states custseg parse leaves
_STATE_FILE = "partial_parse.msgpack"
_CACHE: dict[tuple, object] = {}
_MAX_CACHED = 6


def _label(suffix: str) -> str:
    return suffix.lstrip("_") or "production"


def parse_vars(suffix: str, warehouse_name: str = WAREHOUSE_FILE) -> dict:
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


def parsed_manifest(workdir: Path, suffix: str = PRODUCTION, warehouse_name: str = WAREHOUSE_FILE):
    """The project parsed for builds with schema suffix ``suffix``, cached in this process.

    dbt's partial-parse state lives in ``<workdir>/dbt/parse/<label>/``; when that is
    missing, the one ``custseg parse`` left in ``dbt_project/target/parse/`` is copied in
    (dbt parses in full when it no longer matches the project). The process cache is
    keyed by the folder and the newest project file's time, so an edited project is
    parsed again.
    """
    target = Path(workdir) / "dbt" / "parse" / _label(suffix)
    changed = project_mtime()
    key = (str(target.resolve()), suffix, warehouse_name, changed)
    if key not in _CACHE:
        seed = SEED_ROOT / _label(suffix) / _STATE_FILE
        seeded = warehouse_name == WAREHOUSE_FILE  # the name custseg parse uses
        if not (target / _STATE_FILE).exists() and seed.exists() and seeded:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seed, target / _STATE_FILE)
        if len(_CACHE) >= _MAX_CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _parse(target, suffix, warehouse_name)
        if seeded:
            _refresh_seed(target / _STATE_FILE, seed, changed)
    return _CACHE[key]


def _refresh_seed(state: Path, seed: Path, changed: float) -> None:
    """Replace a seed older than the project files (``changed``) by this parse's state.

    dbt parses in full when the profile or ``dbt_project.yml`` changed since the seed was
    made, and without this every new workdir would, until the next ``custseg parse``.
    Replaced atomically (runs may parse at once); an install folder that cannot be
    written keeps its seed.
    """
    partial = seed.with_name(f"{seed.name}.{os.getpid()}.tmp")
    try:
        if (seed.exists() and seed.stat().st_mtime >= changed) or not state.exists():
            return
        seed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, partial)
        os.replace(partial, seed)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()


def seed_parse_states() -> list[Path]:
    """Parse once per suffix into ``dbt_project/target/parse/`` (``custseg parse``)."""
    out = []
    for suffix in SEEDED_SUFFIXES:
        target = SEED_ROOT / _label(suffix)
        _parse(target, suffix, WAREHOUSE_FILE)
        out.append(target / _STATE_FILE)
    return out
