"""The dbt project runs unchanged on Apache Spark (dbt-spark, session method).

Builds the pre-ML models (staging, intermediate, features: everything not tagged
``post_ml``) of one generated demo data set twice, on DuckDB as the pipeline does
and on a local Spark through the committed ``spark`` target of
dbt_project/profiles.yml, and checks that ``features.customer_features`` and
``features.customer_outcomes`` agree: same customers, same column types, dates,
integers and text exactly, floats within 1e-9 (DOUBLE images of exact decimal sums
may round differently in the last bit).

Spark runs in a child process (``python -m tests.test_spark``), so its JVM ends
with the build. The raw tables reach it the documented way (docs/scaling.md):
DuckDB ``raw.*`` -> Parquet -> ``dbt run-operation register_raw_parquet``.
Skipped only when no Java runtime is installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"
CUSTOMERS = 500
SEED = 3
# Earlier than the data's end (2025-12-31), so customer_outcomes has complete horizons.
AS_OF_DATE = "2025-09-01"
# The same nodes on both engines: seeds and the models before the ML step.
SELECTION = ("--exclude", "tag:post_ml", "--resource-type", "model", "--resource-type", "seed")
# dbt tests also run on Spark, for the compared models (the rest run on DuckDB in tests/dbt).
SPARK_TESTED = "customer_features customer_outcomes"
TABLES = ("features.customer_features", "features.customer_outcomes")
RAW_TABLES = ("transactions", "customers", "events")
# DuckDB type -> the Spark type the same cross-database macro gives.
SPARK_TYPE = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
FLOAT_TOLERANCE = 1e-9


def _java_available() -> bool:
    """Whether Spark's launcher finds a JVM: $JAVA_HOME/bin/java, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


# --- Spark side (runs in the child process) ---------------------------------------------


def _spark_main(spec_file: Path) -> None:
    """Register raw.*, build and test on Spark, write the compared tables as Parquet."""
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    spec = json.loads(spec_file.read_text())
    work = Path(spec["work"])
    common = [
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target", "spark",
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(spec["vars"]),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
    ]  # fmt: skip

    def dbt(*args: str) -> float:
        start = time.perf_counter()
        res = dbtRunner().invoke([*args, *common])
        if not res.success:
            failed = [
                f"{r.node.unique_id}: {r.status} {r.message}"
                for r in getattr(res.result, "results", None) or []
                if str(r.status) not in ("success", "pass")
            ]
            sys.exit(
                f"dbt {' '.join(args)} failed on Spark: {res.exception or ''}\n" + "\n".join(failed)
            )
        return time.perf_counter() - start

    timings = {
        # Starts the SparkSession from the profile (JVM start-up included).
        "register_raw_s": dbt(
            "run-operation", "register_raw_parquet", "--args", json.dumps({"path": spec["raw"]})
        ),
        "build_s": dbt("build", *SELECTION),
        "test_s": dbt("test", "--select", SPARK_TESTED, "--exclude", "tag:post_ml"),
    }
    spark = SparkSession.builder.getOrCreate()
    types = {}
    for table in TABLES:
        frame = spark.table(table)
        types[table] = frame.dtypes
        frame.toPandas().to_parquet(work / f"{table}.parquet")
    (work / "result.json").write_text(json.dumps({"timings": timings, "types": types}))
    spark.stop()


# --- test (parent process) ---------------------------------------------------------------


def _duckdb_build(tmp: Path) -> tuple[Path, dict, float]:
    """Demo data -> DuckDB raw.* -> pre-ML dbt build; returns the warehouse, dbt vars, build seconds."""
    from orchestration.demo import generate
    from orchestration.ingest.load import ingest
    from orchestration.resources import WarehouseResource
    from tests.dbt._dbt_helpers import run_dbt

    resource = WarehouseResource(workdir=str(tmp / "duckdb"), as_of_date=AS_OF_DATE)
    generate(resource.demo_data_dir, customers=CUSTOMERS, seed=SEED)
    with resource.connect() as con:
        ingest(con, resource.project_config(), "spark", resource.data_root, log=lambda *_: None)
    start = time.perf_counter()
    run_dbt(tmp / "dbt_duckdb", "build", *SELECTION, variables=resource.run_context().dbt_vars())
    return resource.warehouse_path, resource.run_context().dbt_vars(), time.perf_counter() - start


def _same_values(column: str, kind: str, duck: pd.Series, spark: pd.Series) -> None:
    if kind == "double":
        np.testing.assert_allclose(
            spark.astype("float64").to_numpy(),
            duck.astype("float64").to_numpy(),
            rtol=FLOAT_TOLERANCE,
            atol=FLOAT_TOLERANCE,
            equal_nan=True,
            err_msg=column,
        )
        return
    if kind in ("int", "bigint"):
        # toPandas gives float64 for an integer column with NULLs: exact below 2**53.
        a, b = duck.astype("float64").to_numpy(), spark.astype("float64").to_numpy()
        assert np.array_equal(a, b, equal_nan=True), column
        return
    if kind in ("date", "timestamp"):
        a, b = pd.to_datetime(duck), pd.to_datetime(spark)
        assert a.isna().equals(b.isna()) and (a[a.notna()] == b[b.notna()]).all(), column
        return

    def plain(values: pd.Series) -> list:
        return [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values
        ]

    assert plain(duck.astype(object)) == plain(spark.astype(object)), column


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict:
    if not _java_available():
        pytest.skip(
            "no Java runtime ($JAVA_HOME/bin/java, else `java` on PATH): Spark needs Java 17,"
            " e.g. `apt-get install openjdk-17-jre-headless`"
        )
    tmp = tmp_path_factory.mktemp("spark")
    warehouse, dbt_vars, duckdb_build_s = _duckdb_build(tmp)

    raw = tmp / "raw_parquet"
    raw.mkdir()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in RAW_TABLES:
            con.execute(f"copy raw.{table} to '{raw / table}.parquet' (format parquet)")
        duck = {
            table: (
                con.execute(f"select * from {table} order by customer_id").df(),
                {name: typ for name, typ, *_ in con.execute(f"describe {table}").fetchall()},
            )
            for table in TABLES
        }

    work = tmp / "spark"
    work.mkdir()
    spark_vars = {k: v for k, v in dbt_vars.items() if k != "warehouse_path"}
    spark_vars |= {
        "spark_dir": str(work),
        # Tables only for this process: no Hive metastore to start (~10 s).
        "spark_catalog": "in-memory",
        "spark_master": "local[2]",
        "spark_shuffle_partitions": 2,
    }
    spec = work / "spec.json"
    spec.write_text(json.dumps({"work": str(work), "raw": str(raw), "vars": spark_vars}))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_spark", str(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    spark_total_s = time.perf_counter() - start
    if proc.returncode != 0:
        pytest.fail(
            f"Spark build failed (exit {proc.returncode}):\n"
            + "\n".join(proc.stdout.splitlines()[-60:])
            + "\n--- stderr ---\n"
            + "\n".join(proc.stderr.splitlines()[-60:])
        )
    result = json.loads((work / "result.json").read_text())
    timings = {"duckdb_build_s": duckdb_build_s, "spark_process_s": spark_total_s}
    timings |= result["timings"]
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    spark = {
        table: (pd.read_parquet(work / f"{table}.parquet"), dict(result["types"][table]))
        for table in TABLES
    }
    return {"duckdb": duck, "spark": spark, "timings": timings}


@pytest.mark.parametrize("table", TABLES)
def test_spark_build_equals_duckdb(builds: dict, table: str) -> None:
    duck, duck_types = builds["duckdb"][table]
    spark, spark_types = builds["spark"][table]
    assert len(duck) > 100
    assert list(spark.columns) == list(duck.columns)
    assert {c: spark_types[c] for c in duck.columns} == {
        c: SPARK_TYPE.get(t, t.lower().replace(", ", ",")) for c, t in duck_types.items()
    }
    spark = spark.sort_values("customer_id", ignore_index=True)
    assert spark["customer_id"].tolist() == duck["customer_id"].tolist()
    for column in duck.columns:
        _same_values(column, spark_types[column], duck[column], spark[column])


def test_customer_outcomes_have_labels(builds: dict) -> None:
    """The as-of date leaves complete horizons, so the comparison covers churn labels too."""
    outcomes, _ = builds["duckdb"]["features.customer_outcomes"]
    assert outcomes["is_horizon_complete"].all()
    assert 0 < outcomes["churned"].astype(bool).mean() < 1


if __name__ == "__main__":
    _spark_main(Path(sys.argv[1]))
