"""Publish the marts for Power BI: one Parquet file per mart plus ``manifest.json``.

Layout under ``WORKDIR/exports/``::

    versions/<published-at>_<run-id>/   a complete, never-modified export: one
                                       Parquet file per mart, marts.duckdb (the
                                       same tables for the DuckDB ODBC driver),
                                       manifest.json
    powerbi -> versions/...            the published version (a symlink)

A publish writes a new version folder, then swaps the ``powerbi`` link with an
atomic rename, so a reader sees the old complete version or the new complete
one, never a mix; a failure before the swap leaves the published version as it
was. The last ``keep`` versions are kept, so a reader holding an older version
keeps working while the next publish happens.

Every copy carries the marts' descriptions (the dbt YAML's, which dbt writes onto the
warehouse tables as comments; ``descriptions.py``): ``COMMENT ON`` in ``marts.duckdb``,
``description`` on each table and column of ``manifest.json``, and the Parquet files'
key-value metadata (``description``, ``description:<column>``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration.io.permissions import apply_export_access
from orchestration.io.sql import ident, literal
from orchestration.publish.descriptions import TableDoc, from_warehouse, parquet_metadata

PUBLISHED = "powerbi"
MARTS_DB = "marts.duckdb"


@dataclass(frozen=True)
class ExportResult:
    version_dir: Path
    published: Path
    manifest: dict


def list_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = ? "
        "and table_type = 'BASE TABLE' order by table_name",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def publish_marts(
    con: duckdb.DuckDBPyConnection,
    exports_dir: str | Path,
    run_id: str,
    as_of_date: str | None,
    schema: str = "marts",
    keep: int = 3,
    csv: bool = False,
    access: str | None = None,
    workdir: str | Path | None = None,
) -> ExportResult:
    """Write every table of ``schema`` as a new export version and publish it atomically.

    Parquet per table (the recommended Power Query route), ``marts.duckdb`` with the
    same tables, ``manifest.json``, and with ``csv`` also ``<table>.csv`` (UTF-8,
    header, ISO dates). The last ``keep`` versions are kept. ``access`` (config
    ``export.access``) sets who may read the export, before it is published
    (``orchestration/io/permissions.py``; ``workdir``: the run's, when the export is in
    it); None leaves the modes the process's umask gives.
    """
    exports_dir = Path(exports_dir)
    created = not exports_dir.exists()
    versions = exports_dir / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = f"{now:%Y%m%dT%H%M%S%fZ}_{run_id[:8]}"
    tmp = versions / f".tmp-{name}"
    tables = list_tables(con, schema)
    if not tables:
        raise RuntimeError(f"no tables in schema {schema!r} to export")
    docs = from_warehouse(con, schema)
    tmp.mkdir()
    try:
        entries = []
        for table in tables:
            target = tmp / f"{table}.parquet"
            doc = docs[table]
            con.execute(
                f"copy (select * from {ident(schema)}.{ident(table)}) to {literal(str(target))} "
                # Snappy: every Parquet reader (Power Query) reads it.
                f"(format parquet, compression snappy{_kv_metadata(doc)})"
            )
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            rows = con.execute(f"select count(*) from {ident(schema)}.{ident(table)}").fetchone()[0]
            extra = {}
            if csv:
                csv_target = tmp / f"{table}.csv"
                con.execute(
                    f"copy (select * from {ident(schema)}.{ident(table)}) to "
                    f"{literal(str(csv_target))} (format csv, header true)"
                )
                extra["csv_file"] = csv_target.name
            entries.append(
                {
                    "name": table,
                    "description": doc.description,
                    "file": target.name,
                    **extra,
                    "rows": rows,
                    "columns": [
                        {"name": c, "type": t, "description": doc.columns.get(c, "")}
                        for c, t in columns
                    ],
                }
            )
        _write_marts_db(tmp / MARTS_DB, tmp, [docs[e["name"]] for e in entries])
        manifest = {
            "run_id": run_id,
            "published_at": now.isoformat(),
            "as_of_date": as_of_date,
            "duckdb_file": MARTS_DB,
            "duckdb_version": duckdb.__version__,
            "tables": entries,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        final = versions / name
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if access is not None:
        apply_export_access(exports_dir, access, workdir, created=created)
    published = _swap_pointer(exports_dir, final)
    _prune(versions, keep=keep, current=final)
    return ExportResult(version_dir=final, published=published, manifest=manifest)


def _kv_metadata(doc: TableDoc) -> str:
    pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in parquet_metadata(doc).items())
    return f", kv_metadata {{{pairs}}}" if pairs else ""


def _write_marts_db(path: Path, folder: Path, docs: list[TableDoc]) -> None:
    """A standalone DuckDB file with only the exported tables, for the DuckDB ODBC driver.

    Built from the Parquet files just written (not from the live warehouse), so its
    tables are exactly the export; readers open it read-only. The descriptions are
    comments, as in the warehouse (``duckdb_tables()``, ``duckdb_columns()``).
    """
    with duckdb.connect(str(path)) as out:
        for doc in docs:
            table = ident(doc.name)
            out.execute(
                f"create table {table} as select * from read_parquet("
                f"{literal(str(folder / f'{doc.name}.parquet'))})"
            )
            if doc.description:
                out.execute(f"comment on table {table} is {literal(doc.description)}")
            for column, text in doc.columns.items():
                if text:
                    out.execute(f"comment on column {table}.{ident(column)} is {literal(text)}")
        out.execute("checkpoint")


def _swap_pointer(exports_dir: Path, target: Path) -> Path:
    link = exports_dir / PUBLISHED
    if link.exists() and not link.is_symlink():
        # A real folder from an older layout: move it aside once, then use links.
        link.rename(exports_dir / f".{PUBLISHED}-legacy-{os.getpid()}")
    # Links of publishes killed before their rename (one writer at a time: none is live).
    for stale in exports_dir.glob(f".{PUBLISHED}.*.tmp"):
        if stale.is_symlink():
            stale.unlink(missing_ok=True)
    tmp_link = exports_dir / f".{PUBLISHED}.{os.getpid()}.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(Path("versions") / target.name, target_is_directory=True)
    os.replace(tmp_link, link)  # atomic on POSIX
    return link


def _prune(versions: Path, keep: int, current: Path) -> None:
    done = sorted(p for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in done[: max(0, len(done) - keep)]:
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
    # Leftovers of a publish that was killed half-way.
    for stale in versions.glob(".tmp-*"):
        if stale != current:
            shutil.rmtree(stale, ignore_errors=True)


def read_manifest(exports_dir: str | Path) -> dict:
    return json.loads((Path(exports_dir) / PUBLISHED / "manifest.json").read_text(encoding="utf-8"))
