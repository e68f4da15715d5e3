"""The marts' descriptions: one text per table and column, written once in the dbt YAML.

``dbt_project/models/marts/_marts__models.yml`` describes every mart and column. dbt
writes those texts onto the warehouse tables (``persist_docs``: ``COMMENT ON``), where the
export reads them (:func:`from_warehouse`) to carry them into ``marts.duckdb``,
``manifest.json`` and the Parquet metadata. The Power BI model generator and the glossary
read the same texts from the dbt manifest (:func:`from_manifest`). Both go through
:func:`clean`, so every copy is the same string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

# Parquet key-value metadata keys: the table's text, and one key per column.
TABLE_KEY = "description"
COLUMN_KEY = "description:{column}"


@dataclass(frozen=True)
class TableDoc:
    """A table's description and its columns' (in table order; "" where there is none)."""

    name: str
    description: str
    columns: dict[str, str]
    # The dbt contract's data_type per column (from the manifest; empty from the warehouse).
    types: dict[str, str] = field(default_factory=dict)


def clean(text: str | None) -> str:
    """One line, single spaces: YAML's folded blocks end in a newline, comments keep it."""
    return " ".join((text or "").split())


def from_warehouse(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, TableDoc]:
    """The ``COMMENT ON`` texts of every base table of ``schema``."""
    tables = con.execute(
        "select table_name, comment from duckdb_tables() "
        "where schema_name = ? and database_name = current_database()",
        [schema],
    ).fetchall()
    docs = {}
    for table, comment in tables:
        columns = con.execute(
            "select column_name, comment from duckdb_columns() where schema_name = ? "
            "and table_name = ? and database_name = current_database() order by column_index",
            [schema, table],
        ).fetchall()
        docs[table] = TableDoc(table, clean(comment), {c: clean(text) for c, text in columns})
    return docs


def from_manifest(manifest: str | Path, folder: str = "marts") -> dict[str, TableDoc]:
    """The descriptions of the dbt models under ``models/<folder>/``, from a parsed manifest."""
    nodes = json.loads(Path(manifest).read_text(encoding="utf-8"))["nodes"].values()
    docs = {}
    for node in nodes:
        path = node.get("original_file_path", "")
        if node.get("resource_type") != "model" or Path(path).parent.name != folder:
            continue
        columns = node.get("columns", {}).values()
        docs[node["name"]] = TableDoc(
            node["name"],
            clean(node.get("description")),
            {c["name"]: clean(c.get("description")) for c in columns},
            {c["name"]: (c.get("data_type") or "").upper() for c in columns},
        )
    return dict(sorted(docs.items()))


def parquet_metadata(doc: TableDoc) -> dict[str, str]:
    """The key-value metadata a Parquet file of the table carries (texts that exist only)."""
    pairs = {TABLE_KEY: doc.description}
    pairs |= {COLUMN_KEY.format(column=c): text for c, text in doc.columns.items()}
    return {key: text for key, text in pairs.items() if text}
