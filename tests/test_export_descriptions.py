"""The marts' descriptions travel with every copy of the export (orchestration/publish/).

Unit tests on a small warehouse with comments; tests/test_descriptions.py checks a real
export against the dbt YAML.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.publish.descriptions import clean, from_manifest, from_warehouse
from orchestration.publish.export import publish_marts

TEXT = {
    "dim_a": "One row per a. It's described\n(with a quote and a newline).",
    "dim_a.id": "Primary key.",
    "dim_a.name": "The name: 'x' then the id.",
}


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_a as select i::bigint as id, 'x' || i as name from range(3) t(i)"
    )
    con.execute("create table marts.fct_b as select i::integer as id from range(2) t(i)")
    con.execute("comment on table marts.dim_a is $$" + TEXT["dim_a"] + "$$")
    con.execute("comment on column marts.dim_a.id is $$" + TEXT["dim_a.id"] + "$$")
    con.execute("comment on column marts.dim_a.name is $$" + TEXT["dim_a.name"] + "$$")
    yield con
    con.close()


def test_clean_gives_one_line():
    assert clean("  One row\nper   customer.\n") == "One row per customer."
    assert clean(None) == ""


def test_warehouse_comments_are_read_per_table_and_column(con):
    docs = from_warehouse(con, "marts")
    assert docs["dim_a"].description == clean(TEXT["dim_a"])
    assert docs["dim_a"].columns == {"id": "Primary key.", "name": TEXT["dim_a.name"]}
    assert docs["fct_b"].description == "" and docs["fct_b"].columns == {"id": ""}


def test_every_copy_of_the_export_carries_the_descriptions(con, tmp_path):
    result = publish_marts(con, tmp_path / "exports", "run-docs", None)
    folder = result.version_dir
    expected = {"dim_a": clean(TEXT["dim_a"]), "fct_b": ""}
    columns = {("dim_a", "id"): "Primary key.", ("dim_a", "name"): TEXT["dim_a.name"]}
    columns[("fct_b", "id")] = ""

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {t["name"]: t["description"] for t in manifest["tables"]} == expected
    got = {
        (t["name"], c["name"]): c["description"] for t in manifest["tables"] for c in t["columns"]
    }
    assert got == columns

    with duckdb.connect(str(folder / "marts.duckdb"), read_only=True) as out:
        tables = dict(out.execute("select table_name, comment from duckdb_tables()").fetchall())
        got = {
            (t, c): text or ""
            for t, c, text in out.execute(
                "select table_name, column_name, comment from duckdb_columns() "
                "where database_name = current_database()"
            ).fetchall()
        }
    assert {t: text or "" for t, text in tables.items()} == expected
    assert got == columns

    for table in expected:
        meta = {
            k.decode(): v.decode()
            for k, v in (pq.read_schema(folder / f"{table}.parquet").metadata or {}).items()
            if k.startswith(b"description")
        }
        want = {"description": expected[table]} if expected[table] else {}
        want |= {
            f"description:{c}": text for (t, c), text in columns.items() if t == table and text
        }
        assert meta == want


def test_manifest_descriptions_are_read_from_dbt_models_of_one_folder(tmp_path):
    node = {
        "resource_type": "model",
        "name": "dim_a",
        "original_file_path": "models/marts/dim_a.sql",
        "description": "One row\nper a.\n",
        "columns": {"id": {"name": "id", "description": "Key.", "data_type": "bigint"}},
    }
    other = node | {"name": "stg_a", "original_file_path": "models/staging/stg_a.sql"}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"m.a": node, "m.b": other}}), encoding="utf-8")
    [doc] = from_manifest(path).values()
    assert (doc.name, doc.description, doc.columns, doc.types) == (
        "dim_a",
        "One row per a.",
        {"id": "Key."},
        {"id": "BIGINT"},
    )
