"""A delivery the run cannot score stops before raw.* changes, saying why (issues 17 and 18).

One customer used to end in ``FloatingPointError: conditional expected purchases: 1
value(s) are not finite`` after a minute of dbt; ``--as-of 2030-01-01`` on 2024 data ran
and scored every customer churned (0.999) without a word, and later ran the ingest
first and failed 17 s on. An as-of date outside the data is now refused by
``custseg run`` before the run starts, and by the ingest before it publishes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import run_pipeline
from orchestration.failures import run_failure_lines
from orchestration.ingest.delivery import MIN_CUSTOMERS, DeliveryError, check_as_of, check_delivery
from orchestration.ingest.load import ingest, ingest_incremental
from orchestration.io.config import InboxConfig, load_config
from orchestration.settings import Settings
from tests.conftest import REPO

FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
RANGE = (
    "The data's transactions run from 2024-01-01 to 2024-03-31: use an as-of date from "
    "2024-01-02 to 2024-04-01"
)
CONFIG = """\
transactions:
  path: t.csv
  columns: {customer_id: cust, order_id: order, ordered_at: when, quantity: qty, unit_price: price}
"""


def _raw(customers: int, first=FIRST, last=LAST) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute("create table raw.transactions (customer_id varchar, ordered_at timestamp)")
    rows = [(f"C{i}", first) for i in range(customers)] + [("C0", last)]
    con.executemany("insert into raw.transactions values (?, ?)", rows)
    return con


def _delivery(folder: Path, customers: int = 12, first=FIRST, last=LAST) -> Path:
    """t.csv: ``customers`` customers who bought on ``first``, one of them again on ``last``."""
    lines = [f"C{i},{i},{first},1,{5 + i}\n" for i in range(customers)]
    lines.append(f"C0,{customers},{last},1,7\n")
    (folder / "t.csv").write_text("cust,order,when,qty,price\n" + "".join(lines))
    (folder / "shop.yaml").write_text(CONFIG)
    return folder / "shop.yaml"


def test_as_of_must_be_after_the_first_transaction_and_at_most_the_day_after_the_last():
    for day in (FIRST + dt.timedelta(days=1), LAST, LAST + dt.timedelta(days=1), None):
        check_as_of(day, FIRST, LAST)
    with pytest.raises(DeliveryError) as late:
        check_as_of(LAST + dt.timedelta(days=2), FIRST, LAST)
    assert str(late.value).startswith(
        "the as-of date 2024-04-02 (--as-of / CUSTSEG_AS_OF_DATE) is 2 days after the last "
        "transaction"
    )
    with pytest.raises(DeliveryError) as early:
        check_as_of(FIRST, FIRST, LAST)
    assert "2024-01-01 (--as-of / CUSTSEG_AS_OF_DATE) is not after the first" in str(early.value)
    for err in (late, early):
        assert RANGE in str(err.value)


def test_one_customer_delivery_is_refused_naming_the_minimum():
    with pytest.raises(DeliveryError, match=rf"^1 customer\(s\) .* need at least {MIN_CUSTOMERS}"):
        check_delivery(_raw(1), None)
    check_delivery(_raw(MIN_CUSTOMERS), None)


def test_as_of_outside_raw_transactions_is_refused_for_a_run_without_ingest():
    with pytest.raises(DeliveryError, match="2,102 days after the last transaction"):
        check_delivery(_raw(50), dt.date(2030, 1, 1))
    with pytest.raises(DeliveryError, match="2023-12-01 .* is not after the first transaction"):
        check_delivery(_raw(50), dt.date(2023, 12, 1))
    check_delivery(_raw(50), dt.date(2024, 4, 1))


def test_as_of_early_in_the_data_counts_only_the_customers_before_it():
    con = _raw(50, first=dt.date(2024, 3, 1))  # C0 alone bought in January
    con.execute("insert into raw.transactions values ('C0', '2024-01-02')")
    with pytest.raises(DeliveryError, match=r"^1 customer\(s\) with a transaction before"):
        check_delivery(con, dt.date(2024, 2, 1))


def _raw_state(con: duckdb.DuckDBPyConnection) -> list:
    return [
        con.execute("select count(*), max(_source_file) from raw.transactions").fetchall(),
        con.execute("select count(*), max(run_id) from raw.quarantine_transactions").fetchall(),
        con.execute("select count(*), max(run_id) from raw.load_log").fetchall(),
    ]


def test_ingest_refuses_an_as_of_outside_the_delivery_before_raw_changes(tmp_path):
    """Full load and append: the date is checked on the staged rows, raw.* stays as it was."""
    old = tmp_path / "old"
    old.mkdir()
    config = load_config(_delivery(old, first=dt.date(2023, 6, 1), last=dt.date(2023, 6, 30)))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(con, config, "first", log=lambda *_: None)
    before = _raw_state(con)
    new = load_config(_delivery(tmp_path))
    with pytest.raises(DeliveryError, match=r"2024-04-05 .* 5 days after the last") as err:
        ingest(con, new, "second", log=lambda *_: None, as_of=dt.date(2024, 4, 5))
    assert RANGE in str(err.value) and _raw_state(con) == before
    # Appending 2024 rows to the 2023 load: the range is that of both.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "new.csv").write_bytes((tmp_path / "t.csv").read_bytes())
    appended = config.model_copy(
        update={
            "transactions": config.transactions.model_copy(
                update={"inbox": InboxConfig(path=str(inbox))}
            )
        }
    )
    with pytest.raises(DeliveryError, match="transactions run from 2023-06-01 to 2024-03-31"):
        ingest_incremental(
            con, appended, "inc", ["new.csv"], log=lambda *_: None, as_of=dt.date(2023, 6, 1)
        )
    assert _raw_state(con) == before
    ingest(con, new, "third", log=lambda *_: None, as_of=dt.date(2024, 4, 1))
    assert _raw_state(con) != before


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("01/02/2026", "argument --as-of: not a date YYYY-MM-DD: '01/02/2026'"),
        ("2023-12-31", "the as-of date 2023-12-31 (--as-of / CUSTSEG_AS_OF_DATE) is not after"),
        ("2024-04-02", "the as-of date 2024-04-02 (--as-of / CUSTSEG_AS_OF_DATE) is 2 days after"),
    ],
)
def test_custseg_run_refuses_an_as_of_outside_the_data_within_3_s(tmp_path, as_of, message):
    """Before the run starts: the warehouse (an earlier load) is not even opened."""
    config = _delivery(tmp_path)
    workdir = tmp_path / "wd"
    workdir.mkdir()
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        ingest(con, load_config(config), "earlier", log=lambda *_: None)
    before = _sha(workdir / "warehouse.duckdb")
    command = [sys.executable, "-m", "orchestration.cli", "run", "--config", str(config)]
    # The CPU the refusal costs (user + system of the child): the suite runs in parallel
    # processes, so wall time measures the neighbours as much as the check.
    before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*command, "--workdir", str(workdir), "--as-of", as_of],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    after_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = (after_cpu.ru_utime - before_cpu.ru_utime) + (after_cpu.ru_stime - before_cpu.ru_stime)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    if "not a date" not in message:
        assert RANGE in done.stderr and "Traceback" not in done.stderr
    assert took < 3, f"{took:.1f} s of CPU"
    assert _sha(workdir / "warehouse.duckdb") == before
    assert sorted(p.name for p in workdir.iterdir()) == ["warehouse.duckdb"]


def test_a_run_refuses_an_as_of_outside_the_delivery_in_its_ingest(tmp_path):
    """The run's own check (a run started from the UI, or by a sensor), before raw.* changes;
    after it, the one for a run with too few customers, before dbt."""
    workdir = tmp_path / "wd"
    workdir.mkdir()
    config = load_config(_delivery(tmp_path, customers=3))
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        ingest(con, config, "earlier", log=lambda *_: None)
        before = _raw_state(con)
    settings = Settings(
        workdir=str(workdir), config_path=str(tmp_path / "shop.yaml"), as_of_date="2030-01-01"
    )
    result = run_pipeline(settings, stream=io.StringIO())
    (line,) = run_failure_lines(result)
    assert line.startswith(
        "ingest_sources: the as-of date 2030-01-01 (--as-of / CUSTSEG_AS_OF_DATE)"
    )
    assert RANGE in line
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        assert _raw_state(con) == before

    result = run_pipeline(
        Settings(workdir=str(workdir), config_path=str(tmp_path / "shop.yaml")),
        stream=io.StringIO(),
    )
    assert run_failure_lines(result) == [
        "dbt_features: 3 customer(s) with a transaction before the day after the last "
        f"transaction (2024-04-01): segments and the CLV and churn models learn from many "
        f"customers and need at least {MIN_CUSTOMERS} (a single customer cannot be "
        "segmented); check that transactions.path names the whole delivery"
    ]
    assert not (workdir / "dbt" / "features").exists()  # dbt never started
