"""Features and outcomes as of a cut-off date (orchestration/cutoffs.py) on real DuckDB files.

* On a small generated demo warehouse, the cut-off build into suffixed schemas equals,
  bit for bit, a separate full ``dbt build`` with ``as_of_date`` = the cut-off (so the
  evaluation uses the production feature code), and leaves the production tables as
  they were; its outcome labels equal an independent pandas computation from
  raw.transactions.
* On the CDNOW sample (Fader & Hardie), the calibration features and the holdout
  outcome reproduce the published numbers of the BG/NBD paper.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dbt.cli.main import dbtRunner

from orchestration.cutoffs import (
    CutoffTables,
    build_features_as_of,
    cutoff_dates,
    cutoff_schema_suffix,
)
from orchestration.dbt_parse import parsed_manifest
from orchestration.demo import generate
from orchestration.ingest.load import ingest
from orchestration.io.config import ProjectConfig, demo_config
from orchestration.resources import WarehouseResource
from tests.dbt._dbt_helpers import PROJECT_DIR, drop_cutoff_schemas, run_dbt

REPO = PROJECT_DIR.parent
DEMO_CUSTOMERS = 600
DEMO_SEED = 11
HORIZON = 90
CANONICAL = [
    "customer_id", "order_id", "product_id", "category", "country", "channel",
    "quantity", "unit_price", "amount", "is_cancellation", "ordered_at",
]  # fmt: skip


def _ingest_and_build(
    resource: WarehouseResource, tmp: Path, config: ProjectConfig | None = None
) -> None:
    """Load the project (default: the resource's) into the warehouse; production pre-ML build."""
    with resource.connect() as con:
        ingest(
            con,
            config or resource.project_config(),
            "cutoffs",
            resource.data_root,
            log=lambda *_: None,
        )
    run_dbt(tmp, "build", "--exclude", "tag:post_ml", variables=resource.run_context().dbt_vars())


def _fingerprint(db_path: Path) -> dict[str, tuple]:
    """Every table (row count, order-independent sum of row hashes) and view (its SQL)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where not temporary"
        ).fetchall()
        out = {
            f"{s}.{t}": con.execute(
                f'select count(*), sum(hash(t)) from "{s}"."{t}" as t'
            ).fetchone()
            for s, t in tables
        }
        for s, v, sql in con.execute(
            "select schema_name, view_name, sql from duckdb_views() where not internal"
        ).fetchall():
            out[f"{s}.{v}"] = (sql,)
    return out


def _schemas(db_path: Path) -> set[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()}


def _exact(value: object) -> object:
    """Equal only when bit-identical (floats by hex, so -0.0 != 0.0 and NaN == NaN)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value.hex()
    return value


def _assert_free(db_path: Path) -> None:
    """dbt left the warehouse file: this process opens it read-only, another one writes it."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        con.execute("select 1").fetchall()
    writer = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('checkpoint').close()"
    done = subprocess.run([sys.executable, "-c", writer, str(db_path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr


def _table(db_path: Path, table: str) -> tuple[list[tuple], list[tuple]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        cur = con.execute(f"select * from {table} order by all")
        rows = [tuple(_exact(v) for v in row) for row in cur.fetchall()]
        return [d[:2] for d in cur.description], rows


# --- demo warehouse ----------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    production: Path  # warehouse with the production build and the cut-off build
    reference: Path  # separate warehouse, full dbt build with as_of_date = cutoff
    as_of: dt.date  # production as-of date (day after the last transaction)
    tables: CutoffTables
    before: dict[str, tuple]
    after: dict[str, tuple]
    schemas_before: set[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    tmp = tmp_path_factory.mktemp("cutoffs_demo")
    production = WarehouseResource(workdir=str(tmp / "production"))
    generate(production.demo_data_dir, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    _ingest_and_build(production, tmp / "production")
    with production.connect(read_only=True) as con:
        (as_of,) = con.execute("select max(as_of_date) from features.customer_features").fetchone()
    # The training cut-off: its horizon is complete and some customers buy again after it.
    cutoff, _ = cutoff_dates(as_of, HORIZON)

    before = _fingerprint(production.warehouse_path)
    schemas_before = _schemas(production.warehouse_path)
    tables = build_features_as_of(
        cutoff,
        name="cutoff_train",
        dbt_vars=production.run_context().dbt_vars(),
        horizon_days=HORIZON,
    )
    after = _fingerprint(production.warehouse_path)

    # Same input files (their paths are in the lineage columns), another warehouse.
    reference = WarehouseResource(workdir=str(tmp / "reference"), as_of_date=cutoff.isoformat())
    _ingest_and_build(reference, tmp / "reference", demo_config(production.demo_data_dir))
    return Demo(
        production.warehouse_path,
        reference.warehouse_path,
        as_of,
        tables,
        before,
        after,
        schemas_before,
    )


def test_cutoff_dates_chain_the_horizons() -> None:
    assert cutoff_dates(dt.date(2026, 1, 1), 90) == (dt.date(2025, 7, 5), dt.date(2025, 10, 3))
    with pytest.raises(ValueError, match="horizon_days"):
        cutoff_dates(dt.date(2026, 1, 1), 0)


def test_cutoff_tables_names(demo: Demo) -> None:
    assert demo.tables.features == "features_cutoff_train.customer_features"
    assert demo.tables.outcomes == "features_cutoff_train.customer_outcomes"
    assert demo.tables.schemas == ("features_cutoff_train", "intermediate_cutoff_train")
    assert demo.tables.cutoff == demo.as_of - dt.timedelta(days=2 * HORIZON)


def test_cutoff_build_equals_a_full_build_as_of_the_cutoff(demo: Demo) -> None:
    """Every as_of model, every column and row, bit for bit: the production code, run earlier."""
    suffix = cutoff_schema_suffix(demo.tables.name)
    with duckdb.connect(str(demo.production), read_only=True) as con:
        built = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema in (?, ?) order by all",
            list(demo.tables.schemas),
        ).fetchall()
    assert ("features" + suffix, "customer_features") in built
    assert ("features" + suffix, "customer_outcomes") in built
    assert len(built) == 11  # the 11 models tagged as_of (tables and views)
    for schema, name in built:
        production_schema = schema.removesuffix(suffix)
        columns, rows = _table(demo.production, f"{schema}.{name}")
        ref_columns, ref_rows = _table(demo.reference, f"{production_schema}.{name}")
        assert columns == ref_columns, name
        assert len(rows) == len(ref_rows) > 0, name
        assert rows == ref_rows, f"{schema}.{name} differs from the full build as of the cut-off"
    with duckdb.connect(str(demo.production), read_only=True) as con:
        (as_of,) = con.execute(f"select distinct as_of_date from {demo.tables.features}").fetchone()
    assert as_of == demo.tables.cutoff


def test_production_tables_are_untouched(demo: Demo) -> None:
    after = {k: v for k, v in demo.after.items() if k.split(".")[0] not in demo.tables.schemas}
    assert after == demo.before
    assert len(demo.before) > 20  # raw, staging, intermediate, features, seeds
    assert _schemas(demo.production) - demo.schemas_before == set(demo.tables.schemas)


def test_only_as_of_models_are_suffixed(demo: Demo) -> None:
    """The cut-off run's refs to non-as_of models (staging, int_transactions_deduped) stay production."""
    work = demo.production.parent / "dbt_cutoffs" / demo.tables.name
    manifest = parsed_manifest(
        demo.production.parent, cutoff_schema_suffix(demo.tables.name), demo.production.name
    )
    schemas = {
        n.name: (n.schema, "as_of" in n.tags)
        for n in manifest.nodes.values()
        if n.resource_type == "model"
    }
    for name, (schema, tagged) in schemas.items():
        assert schema.endswith("_cutoff_train") == tagged, name
    assert schemas["int_transactions_deduped"] == ("intermediate", False)
    assert schemas["stg_transactions"] == ("staging", False)
    compiled = (
        work / "target/compiled/custseg/models/intermediate/int_transactions_as_of.sql"
    ).read_text()
    assert '"intermediate"."int_transactions_deduped"' in compiled
    assert '"intermediate_cutoff_train"."int_as_of_date"' in compiled


def test_the_cutoff_build_logs_like_the_production_builds(demo: Demo) -> None:
    """dbt.log in text at INFO and no manifest.json / run_results.json, as the production
    builds (orchestration/assets/dbt.py): debug-level JSON lines cost time on every node."""
    work = demo.production.parent / "dbt_cutoffs" / demo.tables.name
    assert not (work / "target" / "manifest.json").exists()
    assert not (work / "target" / "run_results.json").exists()
    log = (work / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert "OK created sql table model" in log
    assert not log.lstrip().startswith("{")  # text, not JSON lines
    assert "[debug]" not in log


def _outcomes_by_pandas(db_path: Path, cutoff: dt.date, horizon_days: int) -> pd.DataFrame:
    """Holdout outcomes straight from raw.transactions, without any dbt model.

    Lines on or after the cut-off (exact duplicate lines dropped, as the demo config
    does) form orders; an order is a purchase unless all its lines are returns; a
    purchase day is a day with a purchase; spend is the non-return amount.
    """
    with duckdb.connect(str(db_path), read_only=True) as con:
        raw = con.execute(f"select {', '.join(CANONICAL)} from raw.transactions").df()
    raw = raw.drop_duplicates(subset=CANONICAL)
    raw["day"] = raw["ordered_at"].dt.normalize()
    data_end = raw["day"].max() + pd.Timedelta(days=1)
    start = pd.Timestamp(cutoff)
    end = start + pd.Timedelta(days=horizon_days)
    raw["is_return"] = (raw["quantity"] < 0) | (raw["amount"] < 0) | raw["is_cancellation"]
    raw["purchase_amount"] = raw["amount"].where(~raw["is_return"], 0.0)
    orders = (
        raw[raw["day"] >= start]
        .groupby(["customer_id", "order_id"])
        .agg(day=("day", "min"), all_returns=("is_return", "all"), spend=("purchase_amount", "sum"))
    )
    purchases = orders[~orders["all_returns"]].reset_index()
    in_horizon = purchases[purchases["day"] < end].groupby("customer_id")
    out = pd.DataFrame(
        {
            "next_purchase_date": purchases.groupby("customer_id")["day"].min(),
            "purchase_days_in_horizon": in_horizon["day"].nunique(),
            "spend_in_horizon": in_horizon["spend"].sum(),
        }
    )
    out.attrs["complete"] = end <= data_end
    return out


def test_outcomes_match_an_independent_pandas_computation(demo: Demo) -> None:
    expected = _outcomes_by_pandas(demo.production, demo.tables.cutoff, HORIZON)
    with duckdb.connect(str(demo.production), read_only=True) as con:
        got = con.execute(f"select * from {demo.tables.outcomes}").df().set_index("customer_id")
    # The training horizon ends on the evaluation cut-off: complete.
    assert expected.attrs["complete"]
    assert got["is_horizon_complete"].all()
    horizon_end = pd.Timestamp(demo.as_of - dt.timedelta(days=HORIZON))
    assert (got["horizon_end_date"] == horizon_end).all()
    # A handful of customers of each kind, and every other one too.
    exp = expected.reindex(got.index)
    kinds = {
        "several purchase days": exp["purchase_days_in_horizon"] >= 2,
        "one purchase day": exp["purchase_days_in_horizon"] == 1,
        "next purchase after the horizon": exp["purchase_days_in_horizon"].isna()
        & exp["next_purchase_date"].notna(),
        "never again": exp["next_purchase_date"].isna(),
    }
    for kind, mask in kinds.items():
        assert mask.sum() >= 5, f"the demo data has too few customers who {kind}"
    exp = exp.fillna({"purchase_days_in_horizon": 0, "spend_in_horizon": 0.0})
    exp["churned"] = exp["purchase_days_in_horizon"] == 0
    for column in ("next_purchase_date", "purchase_days_in_horizon", "churned"):
        pd.testing.assert_series_equal(got[column], exp[column], check_dtype=False)
    pd.testing.assert_series_equal(
        got["spend_in_horizon"], exp["spend_in_horizon"], check_exact=False, atol=1e-6
    )


def test_production_outcomes_have_no_labels(demo: Demo) -> None:
    """As of the day after the last transaction nothing is observed: no churn label."""
    with duckdb.connect(str(demo.production), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(*) filter (where is_horizon_complete), count(churned),"
            " sum(purchase_days_in_horizon), count(next_purchase_date)"
            " from features.customer_outcomes"
        ).fetchone()
        (customers,) = con.execute("select count(*) from features.customer_features").fetchone()
    assert rows == (customers, 0, 0, 0, 0)


def test_drop_cutoff_schemas_drops_only_the_copies(demo: Demo, tmp_path: Path) -> None:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(demo.production, copy)
    with duckdb.connect(str(copy)) as con:
        assert drop_cutoff_schemas(con, "cutoff_train") == sorted(demo.tables.schemas)
        assert drop_cutoff_schemas(con, "cutoff_train") == []
    assert _schemas(copy) == demo.schemas_before


def test_a_later_cutoff_reuses_the_parse_with_its_own_date_and_horizon(
    demo: Demo, tmp_path: Path
) -> None:
    """dbt runs in-process on a manifest parsed once per name: the date and horizon still apply.

    Afterwards the warehouse file is free (dbt-duckdb's database is closed).
    """
    db_path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(demo.production, db_path)
    _, later = cutoff_dates(demo.as_of, HORIZON)
    dbt_vars = (
        WarehouseResource(workdir=str(tmp_path)).run_context().dbt_vars()
    )  # as the demo's, but here
    assert dbt_vars["warehouse_path"] == str(db_path)
    tables = build_features_as_of(later, name="cutoff_train", dbt_vars=dbt_vars, horizon_days=30)
    _assert_free(db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        as_of_dates = con.execute(f"select distinct as_of_date from {tables.features}").fetchall()
        horizons = con.execute(
            f"select distinct churn_horizon_days, horizon_end_date - as_of_date from {tables.outcomes}"
        ).fetchall()
    assert as_of_dates == [(later,)] != [(demo.tables.cutoff,)]
    assert horizons == [(30, 30)]


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a-z, 0-9"):
        cutoff_schema_suffix("Cutoff-1")
    with pytest.raises(ValueError, match="a-z, 0-9"):
        build_features_as_of(
            dt.date(2024, 1, 1), name="x y", dbt_vars={"warehouse_path": "w"}, horizon_days=90
        )
    # dbt itself refuses a bad suffix (it becomes part of schema names).
    result = dbtRunner().invoke(
        [
            "parse", "--quiet",
            "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
            "--vars", json.dumps({"cutoff_schema_suffix": "cutoff-1"}),
        ]
    )  # fmt: skip
    assert not result.success
    assert "cutoff_schema_suffix must start with '_'" in str(result.exception)


def test_failed_run_raises_with_the_dbt_output(tmp_path: Path) -> None:
    """Without the production build, the cut-off run cannot read int_transactions_deduped."""
    db_path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db_path)).close()
    with pytest.raises(RuntimeError, match=r"cut-off 'early'\) failed") as info:
        build_features_as_of(
            dt.date(2024, 1, 1),
            name="early",
            dbt_vars={"warehouse_path": str(db_path)},
            horizon_days=90,
        )
    assert "int_transactions_deduped" in str(info.value)
    assert (tmp_path / "dbt_cutoffs" / "early" / "dbt_run.log").is_file()
    _assert_free(db_path)


def test_the_warehouse_is_free_after_dbt_fails_outright(tmp_path: Path) -> None:
    """An exception ends the invocation after dbt-duckdb opened the database (a memory
    limit DuckDB refuses): its traceback still refers to the database, yet the file is
    freed (orchestration/dbt.py: invoke_dbt)."""
    db_path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db_path)).close()
    dbt_vars = {"warehouse_path": str(db_path), "duckdb_memory_limit": "1KB"}
    with pytest.raises(RuntimeError, match=r"cut-off 'early'\) failed: "):
        build_features_as_of(dt.date(2024, 1, 1), name="early", horizon_days=90, dbt_vars=dbt_vars)
    _assert_free(db_path)


def test_as_of_tag_covers_everything_downstream_of_int_as_of_date(dbt_manifest: Path) -> None:
    """A model reading an as_of model without the tag would read production in a cut-off run."""
    manifest = json.loads(dbt_manifest.read_text())
    nodes, children = manifest["nodes"], manifest["child_map"]
    downstream, todo = set(), ["model.custseg.int_as_of_date"]
    while todo:
        node = todo.pop()
        if node.startswith("model.") and node not in downstream:
            downstream.add(node)
            todo.extend(children[node])
    expected = {n for n in downstream if "post_ml" not in nodes[n]["tags"]}
    tagged = {n for n, v in nodes.items() if v["resource_type"] == "model" and "as_of" in v["tags"]}
    assert tagged == expected
    assert "model.custseg.customer_outcomes" in tagged


# --- CDNOW sample ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory, shared_data: Path) -> tuple[Path, CutoffTables]:
    """Calibration weeks 1-39 of 1997 (as of 1997-10-01), holdout weeks 40-78 (to 1998-06-30)."""
    tmp = tmp_path_factory.mktemp("cutoffs_cdnow")
    resource = WarehouseResource(
        workdir=str(tmp),
        config_path=str(REPO / "examples" / "cdnow_sample.yaml"),
        data_root=str(shared_data),
    )
    _ingest_and_build(resource, tmp)
    tables = build_features_as_of(
        dt.date(1997, 10, 1),
        name="calibration",
        dbt_vars=resource.run_context().dbt_vars(),
        horizon_days=273,
    )
    return resource.warehouse_path, tables


def test_cdnow_calibration_counts(cdnow: tuple[Path, CutoffTables]) -> None:
    db_path, tables = cdnow
    with duckdb.connect(str(db_path), read_only=True) as con:
        counts = con.execute(
            f"select count(*), count(*) filter (where lt_frequency = 0) from {tables.features}"
        ).fetchone()
    assert counts == (2357, 1411)


def test_cdnow_calibration_matches_the_published_summary(
    cdnow: tuple[Path, CutoffTables], shared_data: Path
) -> None:
    """frequency, recency and T (weeks) of cdnow_customers_summary.csv, customer by customer.

    T differs by exactly one day: the summary measures T to the last calibration day
    (lifetimes' observation_period_end = 1997-09-30), int_customer_lifetimes to the
    as-of date, the day after it (lt_t_days = T + 1 day).
    """
    db_path, tables = cdnow
    summary = pd.read_csv(shared_data / "cdnow" / "cdnow_customers_summary.csv")
    with duckdb.connect(str(db_path), read_only=True) as con:
        ours = con.execute(
            f"select cast(customer_id as integer) as ID, lt_frequency, lt_recency_days, lt_t_days"
            f" from {tables.features}"
        ).df()
    both = summary.merge(ours, on="ID", how="outer", validate="one_to_one")
    assert len(both) == len(summary) == 2357
    assert (both["frequency"] == both["lt_frequency"]).all()
    assert ((both["lt_recency_days"] / 7).round(2) - both["recency"]).abs().max() < 1e-9
    assert (((both["lt_t_days"] - 1) / 7).round(2) - both["T"]).abs().max() < 1e-9


def test_cdnow_holdout_repeat_transactions(cdnow: tuple[Path, CutoffTables]) -> None:
    """1,882 repeat transactions in weeks 40-78, the published actual (Fader, Hardie & Lee 2005)."""
    db_path, tables = cdnow
    with duckdb.connect(str(db_path), read_only=True) as con:
        row = con.execute(
            "select sum(purchase_days_in_horizon), min(horizon_end_date), max(horizon_end_date),"
            f" bool_and(is_horizon_complete), count(*) from {tables.outcomes}"
        ).fetchone()
    assert row == (1882, dt.date(1998, 7, 1), dt.date(1998, 7, 1), True, 2357)
