"""Incremental dbt builds give the same warehouse as full builds (macros/incremental.sql).

One generated demo data set, split into a base file and two later deliveries. The
deliveries hold what makes an incremental build hard: an exact repeat of a loaded line
(dropped, or counted, as var drop_exact_duplicates says) whose first occurrence by file
and row moves to the new file, new lines of orders loaded before (the order is
aggregated again), a return, a new customer, one with returns only, and a repeat across
the two deliveries.

* ``incremental``: full load of the base file, dbt build; then each delivery appended
  through the inbox (ingest_incremental) and dbt built again without --full-refresh.
* ``full``: a full load of the same files (same paths, so the same lineage), one dbt build.

Every table and view of staging, intermediate and features, and the marts built on
both (with stand-in ML tables), must hold the same rows: EXCEPT ALL both ways, every
column but the load_seq bookkeeping. Then a full load into the incremental warehouse
followed by a dbt build without --full-refresh must rebuild (raw.* was replaced).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from orchestration.cutoffs import build_features_as_of
from orchestration.demo import generate
from orchestration.ingest.load import ingest, ingest_incremental
from orchestration.io.config import demo_config
from tests.dbt._dbt_helpers import create_ml_stand_ins, run_dbt

CUSTOMERS = 300
SEED = 17
PRE_ML = ("--exclude", "tag:post_ml", "--resource-type", "model", "--resource-type", "seed")
POST_ML = ("--select", "tag:post_ml", "--resource-type", "model")
COMPARED_SCHEMAS = ["staging", "intermediate", "features", "marts"]
BOOKKEEPING = {"load_seq"}
CLUSTERS = "select customer_id, hash(customer_id) % 3 as cluster_id, 'segment' as cluster_label"
INCREMENTAL_MODELS = ("int_transactions_deduped", "int_orders", "int_customer_order_totals")


def _quiet(*_args) -> None:
    pass


def _settle(path: Path) -> None:
    then = time.time() - 60
    os.utime(path, (then, then))


def _deliveries(data: Path) -> dict[str, str]:
    """Cut the last lines of the generated transactions.csv into two deliveries, plus
    the awkward lines; returns {file name: content}. The base file keeps the rest."""
    header, *lines = (data / "transactions.csv").read_text(encoding="utf-8").splitlines()
    first, second = int(len(lines) * 0.9), int(len(lines) * 0.95)
    base, batch1, batch2 = lines[:first], lines[first:second], lines[second:]
    old = base[len(base) // 2].split(",")  # order_id,customer_id,order_date,product_id,...
    another = base[len(base) // 3].split(",")
    batch1 += [
        base[10],  # an exact repeat of a loaded line; the inbox path sorts first
        ",".join([*old[:3], "P9999", *old[4:]]),  # a new line in an old order
        ",".join([*another[:5], "-1", *another[6:]]),  # a return in another old order
        "N0000001,CNEW0001," + ",".join(old[2:]),  # a new customer
        "N0000002,CRET0001," + ",".join([*old[2:5], "-1", *old[6:]]),  # one with returns only
        batch1[0],  # a repeat within the delivery
    ]
    batch2 += [batch1[1], base[10]]  # repeats across the deliveries (and of the base)
    (data / "transactions.csv").write_text("\n".join([header, *base]) + "\n", encoding="utf-8")
    return {
        "batch1.csv": "\n".join([header, *batch1]) + "\n",
        "batch2.csv": "\n".join([header, *batch2]) + "\n",
    }


@dataclass(frozen=True)
class Builds:
    incremental: Path
    full: Path
    data: Path
    variables: dict


def _vars(db: Path, drop_duplicates: bool) -> dict:
    return {"warehouse_path": str(db), "drop_exact_duplicates": drop_duplicates}


def _post_ml(work: Path, db: Path, variables: dict) -> None:
    with duckdb.connect(str(db)) as con:
        create_ml_stand_ins(con, f"{CLUSTERS} from features.customer_features")
    run_dbt(work, "build", *POST_ML, variables=variables)


@pytest.fixture(scope="module", params=[True, False], ids=["drop_duplicates", "keep_duplicates"])
def builds(request, tmp_path_factory) -> Builds:
    drop = request.param
    tmp = tmp_path_factory.mktemp("incremental_models")
    data = tmp / "data"
    generate(data, customers=CUSTOMERS, seed=SEED)
    deliveries = _deliveries(data)
    config = demo_config(data)
    inbox = data / "inbox"
    inbox.mkdir(exist_ok=True)

    inc, full = tmp / "incremental" / "warehouse.duckdb", tmp / "full" / "warehouse.duckdb"
    inc.parent.mkdir()
    full.parent.mkdir()
    with duckdb.connect(str(inc)) as con:
        ingest(con, config, "base", log=_quiet)
    run_dbt(tmp / "dbt_inc", "build", *PRE_ML, variables=_vars(inc, drop))
    for name, content in deliveries.items():
        (inbox / name).write_text(content, encoding="utf-8")
        _settle(inbox / name)
        with duckdb.connect(str(inc)) as con:
            result = ingest_incremental(con, config, name, [name], log=_quiet)
        assert result.files, name
        run_dbt(tmp / "dbt_inc", "build", *PRE_ML, variables=_vars(inc, drop))
    _post_ml(tmp / "dbt_inc", inc, _vars(inc, drop))

    with duckdb.connect(str(full)) as con:
        ingest(con, config, "full", log=_quiet)  # the base file and both deliveries
    run_dbt(tmp / "dbt_full", "build", *PRE_ML, "--full-refresh", variables=_vars(full, drop))
    _post_ml(tmp / "dbt_full", full, _vars(full, drop))
    return Builds(inc, full, data, _vars(inc, drop))


def _relations(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_catalog = ? and list_contains(?, table_schema) order by all",
        [catalog, COMPARED_SCHEMAS],
    ).fetchall()
    return [(s, t) for s, t in rows]


def differences(db: Path, reference: Path) -> dict[str, tuple[int, int]]:
    """{schema.table: (rows only in db, rows only in reference)} for every relation that
    differs (EXCEPT ALL both ways, all columns but the bookkeeping); (-1, -1) for one
    that exists on one side only."""
    out: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"attach '{reference}' as reference (read_only)")
        (catalog,) = con.execute("select current_database()").fetchone()
        mine, theirs = _relations(con, catalog), _relations(con, "reference")
        for schema, table in sorted(set(mine) ^ set(theirs)):
            out[f"{schema}.{table}"] = (-1, -1)
        for schema, table in sorted(set(mine) & set(theirs)):
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_catalog = ?"
                    " and table_schema = ? and table_name = ? order by ordinal_position",
                    [catalog, schema, table],
                ).fetchall()
                if c not in BOOKKEEPING
            ]
            cols = ", ".join(f'"{c}"' for c in columns)
            a = f'select {cols} from "{catalog}"."{schema}"."{table}"'
            b = f'select {cols} from reference."{schema}"."{table}"'
            only_a = con.execute(f"select count(*) from ({a} except all {b})").fetchone()[0]
            only_b = con.execute(f"select count(*) from ({b} except all {a})").fetchone()[0]
            if only_a or only_b:
                out[f"{schema}.{table}"] = (only_a, only_b)
    return out


def test_incremental_builds_equal_a_full_build(builds: Builds) -> None:
    assert differences(builds.incremental, builds.full) == {}
    with duckdb.connect(str(builds.full), read_only=True) as con:
        relations = _relations(con, "warehouse")
        (customers,) = con.execute("select count(*) from features.customer_features").fetchone()
    assert len(relations) > 30 and customers > 200  # the comparison covered something


def test_the_awkward_lines_are_in_both(builds: Builds) -> None:
    drop = builds.variables["drop_exact_duplicates"]
    with duckdb.connect(str(builds.incremental), read_only=True) as con:
        # base[10] was delivered three times: kept once with its first occurrence, which
        # is now in batch1 (the inbox path sorts before transactions.csv), or kept thrice.
        rows = con.execute(
            "select count(*), min(source_file) from intermediate.int_transactions_deduped"
            " where n_occurrences = 3"
        ).fetchone()
        assert rows[0] == (1 if drop else 3) and rows[1].endswith("batch1.csv")
        assert con.execute(
            "select count(*) from features.customer_features where customer_id = 'CNEW0001'"
        ).fetchone() == (1,)


def test_the_builds_were_incremental(builds: Builds) -> None:
    """Rows written by earlier builds kept their load_seq: the later builds only added
    and replaced what the deliveries touched (a rebuild stamps every row alike)."""
    with duckdb.connect(str(builds.incremental), read_only=True) as con:
        seqs = [
            s
            for (s,) in con.execute(
                "select distinct load_seq from raw.load_log order by 1"
            ).fetchall()
        ]
        for model in INCREMENTAL_MODELS:
            stamps = [
                s
                for (s,) in con.execute(
                    f"select distinct load_seq from intermediate.{model}"
                ).fetchall()
            ]
            # the base load's rows, and those each delivery touched
            assert sorted(stamps) == seqs[-3:], (model, stamps)


def test_a_full_load_since_the_last_build_makes_the_models_rebuild(
    builds: Builds, tmp_path: Path
) -> None:
    """No --full-refresh: the models see in raw.load_log that raw.* was replaced."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(builds.incremental, db)
    with duckdb.connect(str(db)) as con:
        ingest(con, demo_config(builds.data), "again", log=_quiet)
        (latest,) = con.execute("select max(load_seq) from raw.load_log").fetchone()
    run_dbt(tmp_path, "build", *PRE_ML, variables={**builds.variables, "warehouse_path": str(db)})
    assert differences(db, builds.full) == {}
    with duckdb.connect(str(db), read_only=True) as con:
        for model in INCREMENTAL_MODELS:
            stamps = con.execute(f"select distinct load_seq from intermediate.{model}").fetchall()
            assert stamps == [(latest,)], model


def test_the_default_as_of_date_gives_what_the_same_date_as_a_var_gives(
    builds: Builds, tmp_path: Path
) -> None:
    """Two code paths, one result: with the default as-of date the as_of models read the
    all-time int_customer_order_totals, with a var date they aggregate the orders and
    lines before it. The var set to the default date must give the same rows."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(builds.full, db)
    with duckdb.connect(str(db), read_only=True) as con:
        (as_of,) = con.execute("select as_of_date from intermediate.int_as_of_date").fetchone()
    tables = build_features_as_of(
        as_of,
        name="same_date",
        dbt_vars={**builds.variables, "warehouse_path": str(db)},
        horizon_days=90,
    )
    with duckdb.connect(str(db), read_only=True) as con:
        for model in ("int_customer_order_summary", "int_customer_lifetimes", "customer_features"):
            schema = "features" if model == "customer_features" else "intermediate"
            default, var = f"{schema}.{model}", f"{schema}_same_date.{model}"
            for a, b in ((default, var), (var, default)):
                only = con.execute(
                    f"select count(*) from (select * from {a} except all select * from {b})"
                ).fetchone()
                assert only == (0,), (a, b)
        (rows,) = con.execute(f"select count(*) from {tables.features}").fetchone()
    assert rows > 200
