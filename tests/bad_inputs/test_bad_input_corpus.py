"""Bad-input corpus for the ingest (issue 3): every case states its exact outcome.

A bad file either stops the load with an :class:`IngestError` whose message names the
file (and the column, line or byte where there is one) and leaves the previously
published ``raw.*`` exactly as it was, or it loads with the bad rows in
``raw.quarantine_<source>`` (file, data row, reason), and ``raw.load_log`` reconciles
rows read = rows loaded + rows quarantined for every file. The files are written by the
tests themselves into ``tmp_path``; nothing binary is committed.

Decisions pinned here (see also ``orchestration/ingest/load.py``):

* a header-only file is a valid empty delivery: 0 rows, logged;
* bytes that are not valid in the declared encoding stop the load (line + byte offset):
  a wrong ``encoding:`` is a file-level mistake, quarantining every accented row would hide it;
* ``source_row`` is the data row (header not counted; a quoted multi-line field is one row);
* "date in the future" = a date after the load date + 1 day (``ingest(today=...)``);
* exact duplicate lines are loaded (dbt's ``drop_exact_duplicates`` decides later); with
  ``unique_key`` a later line with the same key and different values is quarantined;
* returns (negative quantity) and cancellations are data: loaded and flagged.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.ingest.load import IngestError, ingest
from orchestration.io.config import ProjectConfig, SourceConfig, load_config

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2024, 6, 30)
HEADER = "cust,order,when,qty,price\n"
COLUMNS = {
    "customer_id": "cust",
    "order_id": "order",
    "ordered_at": "when",
    "quantity": "qty",
    "unit_price": "price",
}
GOOD = HEADER + "A,1,2024-01-02,1,5\nB,2,2024-01-03,2,2.5\n"
TS = dt.datetime
RUN_IDS = itertools.count(1)


@dataclass
class Load:
    con: duckdb.DuckDBPyConnection
    run_id: str

    def rows(self, cols: str = "customer_id, order_id, quantity, unit_price, amount") -> list:
        return self.con.execute(
            f"select {cols} from raw.transactions order by _source_file, _source_row"
        ).fetchall()

    def quarantine(self) -> list[tuple[str, int, str]]:
        """(file name, data row, reason) of every quarantined row, in file order."""
        return [
            (Path(f).name, row, reason)
            for f, row, reason in self.con.execute(
                "select source_file, source_row, reason from raw.quarantine_transactions "
                "order by source_file, source_row"
            ).fetchall()
        ]

    def log(self) -> list[tuple[str, int, int, int]]:
        return [
            (Path(f).name, read, loaded, rejected)
            for f, read, loaded, rejected in self.con.execute(
                "select file, rows_read, rows_loaded, rows_rejected from raw.load_log "
                "where run_id = ? order by file",
                [self.run_id],
            ).fetchall()
        ]


def config(tmp_path: Path, path: str = "t.csv", columns: dict | None = None, **kw):
    return ProjectConfig(
        data_root=str(tmp_path),
        base_dir=str(tmp_path),
        transactions=SourceConfig(path=path, columns=columns or COLUMNS, **kw),
    )


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load(tmp_path: Path, cfg: ProjectConfig, today: dt.date | None = TODAY) -> Load:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    run_id = f"run-{next(RUN_IDS)}"
    ingest(con, cfg, run_id, log=lambda *_: None, today=today)
    assert_reconciled(con, run_id)
    return Load(con, run_id)


def assert_reconciled(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """rows read = loaded + quarantined per file, and the tables hold exactly those rows."""
    per_file = con.execute(
        """
        select l.file, l.rows_read, l.rows_loaded, l.rows_rejected,
               (select count(*) from raw.transactions t where t._source_file = l.file),
               (select count(*) from raw.quarantine_transactions q where q.source_file = l.file),
               (select count(distinct _source_row) from (
                   select _source_row from raw.transactions where _source_file = l.file
                   union all
                   select source_row from raw.quarantine_transactions where source_file = l.file))
        from raw.load_log l where l.source = 'transactions' and l.run_id = ?
        """,
        [run_id],
    ).fetchall()
    assert per_file
    for file, read, loaded, rejected, in_raw, in_quarantine, distinct_rows in per_file:
        assert read == loaded + rejected, file
        assert (in_raw, in_quarantine) == (loaded, rejected), file
        assert distinct_rows == read, file  # each input row in exactly one place
    assert con.execute(
        "select count(*) from raw.quarantine_transactions where source_file is null "
        "or source_row is null or coalesce(reason, '') = '' or raw_record is null"
    ).fetchone() == (0,)


def snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db))
    try:
        return {
            t: con.execute(f"select * from raw.{t} order by all").fetchall()
            for t in ("transactions", "quarantine_transactions", "load_log", "customers")
        }
    finally:
        con.close()


def fails_keeping_previous_load(tmp_path: Path, cfg: ProjectConfig) -> str:
    """Publish a good load, then run ``cfg``: it must raise and leave raw.* as it was."""
    write(tmp_path, "previous.csv", GOOD + "C,3,not a date,1,1\n")
    db = tmp_path / "w.duckdb"
    load(tmp_path, config(tmp_path, "previous.csv")).con.close()
    before = snapshot(db)
    assert len(before["transactions"]) == 2 and len(before["quarantine_transactions"]) == 1
    con = duckdb.connect(str(db))
    try:
        with pytest.raises(IngestError) as err:
            ingest(con, cfg, "run-2", log=lambda *_: None, today=TODAY)
    finally:
        con.close()
    assert snapshot(db) == before
    return str(err.value)


# 1 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.txt"])
def test_01_empty_file_is_an_error_naming_the_file(tmp_path, name):
    path = write(tmp_path, name, b"")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, name))
    assert msg == f"{path}: the file is empty (0 bytes)"


# 2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "header"), [("t.csv", HEADER), ("t.txt", "cust order when qty price\n")]
)
def test_02_header_only_is_a_valid_empty_delivery(tmp_path, name, header):
    write(tmp_path, name, header)
    run = load(tmp_path, config(tmp_path, name))
    assert run.rows() == []
    assert run.quarantine() == []
    assert run.log() == [(name, 0, 0, 0)]


# 3 ------------------------------------------------------------------------------------
def test_03_missing_required_column_names_file_and_column(tmp_path):
    path = write(tmp_path, "t.csv", "cust,order,qty,price\nA,1,1,1\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path))
    assert msg == (
        f"{path}: required column not found: 'when' (mapped to ordered_at, required); "
        "columns present: ['cust', 'order', 'qty', 'price']"
    )


# 4 ------------------------------------------------------------------------------------
def test_04_extra_unknown_columns_are_ignored(tmp_path):
    write(
        tmp_path,
        "t.csv",
        "note,cust,order,when,qty,price,when_2,Unnamed: 7\n"
        "x,A,1,2024-01-02,1,5,garbage,\n"
        "y,B,2,soon,1,5,2024-01-01,z\n",
    )
    run = load(tmp_path, config(tmp_path))
    assert run.rows() == [("A", "1", 1.0, 5.0, 5.0)]
    cols = [r[0] for r in run.con.execute("describe raw.transactions").fetchall()]
    assert "note" not in cols and "when_2" not in cols
    assert run.quarantine() == [("t.csv", 2, "unparseable date ordered_at (when)")]
    # The quarantined record keeps every original value, unmapped ones included.
    raw = run.con.execute("select raw_record from raw.quarantine_transactions").fetchone()[0]
    assert '"note":"y"' in raw and '"when_2":"2024-01-01"' in raw and '"Unnamed: 7":"z"' in raw
    assert run.log() == [("t.csv", 2, 1, 1)]


# 5 ------------------------------------------------------------------------------------
def test_05_wrong_delimiter_lists_every_missing_column_and_hints(tmp_path):
    path = write(tmp_path, "t.csv", "cust;order;when;qty;price\nA;1;2024-01-02;1;5\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, delimiter=","))
    assert msg == (
        f"{path}: columns not found: 'cust' (mapped to customer_id, required), "
        "'order' (mapped to order_id), 'when' (mapped to ordered_at, required), "
        "'qty' (mapped to quantity), 'price' (mapped to unit_price); "
        "columns present: ['cust;order;when;qty;price']; the header has a single column "
        "containing semicolons: check `delimiter:` (configured: ',')"
    )


# 6 ------------------------------------------------------------------------------------
def test_06_non_utf8_bytes_stop_the_load_with_line_and_byte_offset(tmp_path):
    head = (GOOD + "C,3,2024-01-04,1,1\n").encode()
    path = write(tmp_path, "t.csv", head + b"M\xfcller,4,2024-01-05,1,1\nD,5,2024-01-06,1,1\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path))
    assert msg == (
        f"{path}: not valid utf-8 at line 5 (counting the header; byte offset "
        f"{len(head) + 1}: b'\\xfclle'); set `encoding:` to the file's encoding (e.g. latin-1)"
    )
    # The fix the message names works, and nothing is lost.
    run = load(tmp_path, config(tmp_path, encoding="latin-1"))
    assert [r[0] for r in run.rows()] == ["A", "B", "C", "Müller", "D"]


def test_06b_non_utf8_bytes_deep_in_a_line_based_file(tmp_path):
    lines = b"cust order when qty price\n" + b"A 1 2024-01-02 1 5\n" * 50_000
    path = write(tmp_path, "t.txt", lines + b"B 2 2024-01-02 1 \xe95\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, "t.txt"))
    assert msg.startswith(
        f"{path}: not valid utf-8 at line 50002 (counting the header; byte offset "
        f"{len(lines) + 17}: b'\\xe95\\n')"
    )


# 7 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "header"),
    [
        ("t.csv", GOOD, True),
        ("t.txt", "cust order when qty price\nA 1 2024-01-02 1 5\nB 2 2024-01-03 2 2.5\n", True),
        ("t.dat", "A 1 2024-01-02 1 5\nB 2 2024-01-03 2 2.5\n", False),
    ],
)
def test_07_utf8_bom_is_not_part_of_the_first_column(tmp_path, name, content, header):
    write(tmp_path, name, b"\xef\xbb\xbf" + content.encode())
    if header:
        cfg = config(tmp_path, name)
    else:  # no header: the BOM must not stick to the first value either
        cols = {k: f"column{i}" for i, k in enumerate(COLUMNS)}
        cfg = config(tmp_path, name, cols, format="whitespace", header=False)
    run = load(tmp_path, cfg)
    assert run.rows() == [("A", "1", 1.0, 5.0, 5.0), ("B", "2", 2.0, 2.5, 5.0)]
    assert run.log() == [(name, 2, 2, 0)]


# 8 ------------------------------------------------------------------------------------
def test_08_quoted_newlines_are_one_row_and_rows_are_data_rows(tmp_path):
    write(
        tmp_path,
        "t.csv",
        "cust,order,when,qty,price,note\n"
        'A,1,2024-01-02,1,2.5,"line one\nline two"\n'
        "B,2,not a date,1,1,x\n"
        'C,3,2024-01-03,1,1,"a ""quoted"" word, and\r\ntwo\nmore lines"\n'
        "D,4,2024-01-04,-1,3,\n"
        "E,5,2024-13-01,1,1,last\n",
    )
    run = load(tmp_path, config(tmp_path, columns={**COLUMNS, "category": "note"}))
    assert run.rows("customer_id, category, _source_row") == [
        ("A", "line one\nline two", 1),
        ("C", 'a "quoted" word, and\r\ntwo\nmore lines', 3),
        ("D", None, 4),
    ]
    # Data rows 2 and 5 are physical lines 4 and 9: source_row counts rows, not lines.
    assert run.quarantine() == [
        ("t.csv", 2, "unparseable date ordered_at (when)"),
        ("t.csv", 5, "unparseable date ordered_at (when)"),
    ]
    assert run.log() == [("t.csv", 5, 3, 2)]


# 9 ------------------------------------------------------------------------------------
MIXED_DATES = (
    HEADER + "A,1,2024-01-02,1,1\nB,2,03/01/2024,1,1\nC,3,2024-01-04 10:30:00,1,1\n"
    "D,4,31/12/2023,1,1\nE,5,2024-31-12,1,1\n"
)


def test_09a_mixed_date_formats_without_formats_quarantine_the_day_first_ones(tmp_path):
    write(tmp_path, "t.csv", MIXED_DATES)
    run = load(tmp_path, config(tmp_path))
    assert run.rows("customer_id, ordered_at") == [
        ("A", TS(2024, 1, 2)),
        ("C", TS(2024, 1, 4, 10, 30)),
    ]
    assert run.quarantine() == [
        ("t.csv", 2, "unparseable date ordered_at (when)"),
        ("t.csv", 4, "unparseable date ordered_at (when)"),
        ("t.csv", 5, "unparseable date ordered_at (when)"),
    ]
    assert run.log() == [("t.csv", 5, 2, 3)]


def test_09b_date_formats_are_tried_in_order(tmp_path):
    write(tmp_path, "t.csv", MIXED_DATES)
    cfg = config(
        tmp_path,
        date_format="%Y-%m-%d %H:%M:%S",
        date_formats=["%Y-%m-%d", "%d/%m/%Y"],
    )
    run = load(tmp_path, cfg)
    assert run.rows("customer_id, ordered_at") == [
        ("A", TS(2024, 1, 2)),
        ("B", TS(2024, 1, 3)),  # day first: 3 January
        ("C", TS(2024, 1, 4, 10, 30)),
        ("D", TS(2023, 12, 31)),
    ]
    # A value that fits none of the formats is still quarantined.
    assert run.quarantine() == [("t.csv", 5, "unparseable date ordered_at (when)")]


# 10 -----------------------------------------------------------------------------------
def test_10_unparseable_dates_are_quarantined(tmp_path):
    write(
        tmp_path,
        "t.csv",
        HEADER + "A,1,2024-02-30,1,1\nB,2,yesterday,1,1\nC,3,2024-13-01,1,1\n"
        "D,4,20240101,1,1\nE,5,,1,1\nF,6,   ,1,1\nG,7,2024-02-29 23:59:59,1,1\n",
    )
    run = load(tmp_path, config(tmp_path))
    assert run.rows("customer_id, ordered_at") == [("G", TS(2024, 2, 29, 23, 59, 59))]
    assert run.quarantine() == [
        ("t.csv", 1, "unparseable date ordered_at (when)"),
        ("t.csv", 2, "unparseable date ordered_at (when)"),
        ("t.csv", 3, "unparseable date ordered_at (when)"),
        ("t.csv", 4, "unparseable date ordered_at (when)"),
        ("t.csv", 5, "missing ordered_at (when)"),
        ("t.csv", 6, "missing ordered_at (when)"),
    ]
    assert run.log() == [("t.csv", 7, 1, 6)]


# 11 -----------------------------------------------------------------------------------
def test_11_dates_after_load_date_plus_one_day_are_in_the_future(tmp_path):
    write(
        tmp_path,
        "t.csv",
        HEADER + "A,1,2024-06-30 23:00:00,1,1\nB,2,2024-07-01 23:59:59,1,1\n"
        "C,3,2024-07-02 00:00:00,1,1\nD,4,2030-01-01,1,1\n",
    )
    run = load(tmp_path, config(tmp_path), today=TODAY)  # 2024-06-30
    assert [r[0] for r in run.rows()] == ["A", "B"]
    assert run.quarantine() == [
        ("t.csv", 3, "date in the future ordered_at (when)"),
        ("t.csv", 4, "date in the future ordered_at (when)"),
    ]
    assert run.log() == [("t.csv", 4, 2, 2)]


def test_11b_future_rule_defaults_to_the_real_date(tmp_path):
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    write(tmp_path, "t.csv", HEADER + f"A,1,{tomorrow},1,1\nB,2,2999-01-01,1,1\n")
    run = load(tmp_path, config(tmp_path), today=None)
    assert [r[0] for r in run.rows()] == ["A"]
    assert run.quarantine() == [("t.csv", 2, "date in the future ordered_at (when)")]


# 12 -----------------------------------------------------------------------------------
PRICES = (
    HEADER + "A,1,2024-01-02,1,0\n"  # free item sold: quarantined
    "B,2,2024-01-02,2,-1\n"  # negative price: quarantined
    "C,3,2024-01-02,-1,0\n"  # free item returned: data
    "D,4,2024-01-02,-1,-2\n"  # negative price on a return: quarantined
    "E,5,2024-01-02,3,0.01\n"
    "F,6,2024-01-02,0,0\n"  # zero quantity, zero price: no positive quantity, loaded
)


def test_12a_non_positive_prices_are_quarantined_returns_are_not(tmp_path):
    write(tmp_path, "t.csv", PRICES)
    run = load(tmp_path, config(tmp_path))
    assert run.rows() == [
        ("C", "3", -1.0, 0.0, -0.0),
        ("E", "5", 3.0, 0.01, 0.03),
        ("F", "6", 0.0, 0.0, 0.0),
    ]
    assert run.quarantine() == [
        ("t.csv", 1, "non-positive unit_price (price)"),
        ("t.csv", 2, "non-positive unit_price (price)"),
        ("t.csv", 4, "non-positive unit_price (price)"),
    ]
    assert run.log() == [("t.csv", 6, 3, 3)]


def test_12b_allow_non_positive_price_loads_them(tmp_path):
    write(tmp_path, "t.csv", PRICES)
    run = load(tmp_path, config(tmp_path, allow_non_positive_price=True))
    assert [r[0] for r in run.rows()] == ["A", "B", "C", "D", "E", "F"]
    assert run.log() == [("t.csv", 6, 6, 0)]


def test_12c_online_retail_keeps_its_zero_price_lines():
    # 31 lines with a customer and price 0 (2 customers have nothing else): the published
    # reference counts (4,383 customers, 107,927 quarantined) keep them.
    cfg = load_config(REPO / "examples" / "online_retail.yaml")
    assert cfg.transactions.allow_non_positive_price is True


# 13 -----------------------------------------------------------------------------------
def test_13_non_numeric_amounts_are_quarantined(tmp_path):
    write(
        tmp_path,
        "t.csv",
        'cust,order,when,total\nA,1,2024-01-02,"12,50"\nB,2,2024-01-02,abc\n'
        "C,3,2024-01-02,$5\nD,4,2024-01-02,1.2.3\nE,5,2024-01-02,\nF,6,2024-01-02,  7.25 \n"
        "G,7,2024-01-02,1e3\nH,8,2024-01-02,-4\n",
    )
    cols = {"customer_id": "cust", "order_id": "order", "ordered_at": "when", "amount": "total"}
    run = load(tmp_path, config(tmp_path, columns=cols))
    # unit_price is derived as amount / quantity (quantity 1 when unmapped).
    assert run.rows() == [
        ("F", "6", 1.0, 7.25, 7.25),
        ("G", "7", 1.0, 1000.0, 1000.0),
        ("H", "8", 1.0, -4.0, -4.0),
    ]
    assert run.quarantine() == [
        ("t.csv", 1, "non-numeric amount (total)"),
        ("t.csv", 2, "non-numeric amount (total)"),
        ("t.csv", 3, "non-numeric amount (total)"),
        ("t.csv", 4, "non-numeric amount (total)"),
        ("t.csv", 5, "missing amount (total)"),
    ]
    assert run.log() == [("t.csv", 8, 3, 5)]


# 14 -----------------------------------------------------------------------------------
def test_14_nan_and_infinity_strings_are_non_finite(tmp_path):
    write(
        tmp_path,
        "t.csv",
        HEADER + "A,1,2024-01-02,NaN,1\nB,2,2024-01-02,1,inf\nC,3,2024-01-02,1,-Infinity\n"
        "D,4,2024-01-02,nan,Infinity\nE,5,2024-01-02,1e200,1e200\nF,6,2024-01-02,2,1e300\n"
        "G,7,2024-01-02,2,1e13\n",
    )
    run = load(tmp_path, config(tmp_path))
    assert run.rows() == [("G", "7", 2.0, 1e13, 2e13)]
    # Issue 17: finite but beyond DECIMAL(18,4) (|x| >= 1e14), which the marts sum in.
    assert run.quarantine() == [
        ("t.csv", 1, "non-finite quantity (qty)"),
        ("t.csv", 2, "non-finite unit_price (price)"),
        ("t.csv", 3, "non-finite unit_price (price); non-positive unit_price (price)"),
        ("t.csv", 4, "non-finite quantity (qty); non-finite unit_price (price)"),
        (
            "t.csv",
            5,
            "out of range quantity (qty); non-finite amount (quantity × unit_price)",
        ),
        ("t.csv", 6, "out of range amount (quantity × unit_price)"),
    ]
    assert run.log() == [("t.csv", 7, 1, 6)]


# 15 -----------------------------------------------------------------------------------
def test_15_empty_and_blank_customer_ids_are_missing(tmp_path):
    write(
        tmp_path,
        "t.csv",
        HEADER + ',1,2024-01-02,1,1\n"",2,2024-01-02,1,1\n   ,3,2024-01-02,1,1\n'
        '"\t ",4,2024-01-02,1,1\n" A1 ",5,2024-01-02,1,1\n007,6,2024-01-02,1,1\n',
    )
    run = load(tmp_path, config(tmp_path))
    assert [r[0] for r in run.rows()] == ["A1", "007"]  # trimmed, leading zeros kept
    assert run.quarantine() == [
        ("t.csv", 1, "missing customer_id (cust)"),
        ("t.csv", 2, "missing customer_id (cust)"),
        ("t.csv", 3, "missing customer_id (cust)"),
        ("t.csv", 4, "missing customer_id (cust)"),
    ]
    assert run.log() == [("t.csv", 6, 2, 4)]


# 16 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("unique_key", [None, ["order_id", "customer_id"]])
def test_16_exact_duplicate_rows_are_loaded_and_counted(tmp_path, unique_key):
    line = "A,1,2024-01-02,1,5\n"
    write(tmp_path, "t.csv", HEADER + line * 3 + "B,2,2024-01-03,1,1\n")
    run = load(tmp_path, config(tmp_path, unique_key=unique_key))
    assert run.rows("customer_id, _source_row") == [("A", 1), ("A", 2), ("A", 3), ("B", 4)]
    assert run.quarantine() == []
    assert run.log() == [("t.csv", 4, 4, 0)]


# 17 -----------------------------------------------------------------------------------
def test_17_duplicate_key_with_different_values_is_quarantined(tmp_path):
    header = "cust,order,sku,when,qty,price\n"
    write(
        tmp_path,
        "a.csv",
        header + "A,1,P1,2024-01-02,1,5\n"  # first of (1, P1): wins
        "A,1,P1,2024-01-02,1,5\n"  # exact repeat: loaded
        "A,1,P1,2024-01-02,2,5\n"  # same key, other quantity: quarantined
        "A,1,P2,2024-01-02,1,5\n"  # other key
        "B,3,P1,not a date,1,1\n"  # invalid: does not claim key (3, P1)
        "B,3,P1,2024-01-03,1,1\n"  # first valid row of (3, P1): wins
        "B,3,P1,,9,1\n",  # invalid AND a different (3, P1): only its own reason
    )
    write(
        tmp_path,
        "b.csv",
        header + "A,1,P1,2024-01-02,5,5\n"  # key seen in a.csv with other values
        "A,1,P1,2024-01-02,1,5\n",  # repeat of a.csv's row: loaded
    )
    cols = {**COLUMNS, "product_id": "sku"}
    run = load(tmp_path, config(tmp_path, "*.csv", cols, unique_key=["order_id", "product_id"]))
    assert run.rows("_source_file[-5:], _source_row, order_id, product_id, quantity") == [
        ("a.csv", 1, "1", "P1", 1.0),
        ("a.csv", 2, "1", "P1", 1.0),
        ("a.csv", 4, "1", "P2", 1.0),
        ("a.csv", 6, "3", "P1", 1.0),
        ("b.csv", 2, "1", "P1", 1.0),
    ]
    assert run.quarantine() == [
        ("a.csv", 3, "duplicate key (order_id, product_id)"),
        ("a.csv", 5, "unparseable date ordered_at (when)"),
        ("a.csv", 7, "missing ordered_at (when)"),
        ("b.csv", 1, "duplicate key (order_id, product_id)"),
    ]
    assert run.log() == [("a.csv", 7, 4, 3), ("b.csv", 2, 1, 1)]


def test_17b_unique_key_must_name_canonical_columns(tmp_path):
    with pytest.raises(
        ValueError, match=r"unique_key must list canonical columns; unknown: \['sku'\]"
    ):
        config(tmp_path, unique_key=["order_id", "sku"])


# 18 -----------------------------------------------------------------------------------
def test_18_customer_with_only_returns_is_loaded_and_flagged(tmp_path):
    write(
        tmp_path,
        "t.csv",
        HEADER + "R,C9,2024-01-02,-2,5\nR,10,2024-01-03,-1,3\nA,11,2024-01-03,1,3\n",
    )
    run = load(tmp_path, config(tmp_path, cancellation_prefix="C"))
    assert run.rows("customer_id, order_id, quantity, amount, is_cancellation") == [
        ("R", "C9", -2.0, -10.0, True),
        ("R", "10", -1.0, -3.0, False),
        ("A", "11", 1.0, 3.0, False),
    ]
    assert run.quarantine() == []
    assert run.log() == [("t.csv", 3, 3, 0)]


# 19 -----------------------------------------------------------------------------------
def _parquet(tmp_path: Path, n: int = 20_000) -> Path:
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {
            "cust": [f"C{i}" for i in range(n)],
            "order": [str(i) for i in range(n)],
            "when": pd.date_range("2024-01-01", periods=n, freq="min"),
            "qty": range(n),
            "price": [1.5] * n,
        }
    ).to_parquet(path)
    return path


def test_19a_truncated_parquet_is_an_error_naming_the_file(tmp_path):
    path = _parquet(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, "t.parquet"))
    assert msg.startswith(f"{path}: cannot be read as parquet: ")
    assert "No magic bytes found at end of file" in msg


def test_19b_parquet_with_corrupt_pages_is_an_error_naming_the_file(tmp_path):
    # The footer reads (row counts work); the data pages do not decompress.
    path = _parquet(tmp_path)
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) // 2):
        data[i] = (data[i] * 7 + 3) % 256
    path.write_bytes(bytes(data))
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, "t.parquet"))
    assert msg.startswith(f"{path}: cannot be read as parquet: ")
    assert "\n" not in msg


def test_19c_text_file_named_parquet_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "t.parquet", GOOD)
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, "t.parquet"))
    assert msg.startswith(f"{path}: cannot be read as parquet: ")


# 20 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1_000_000, 3_000_000])  # DuckDB's own limit is 2 MB
def test_20a_very_long_field_is_parsed(tmp_path, size):
    note = "x" * size
    write(
        tmp_path,
        "t.csv",
        "cust,order,when,qty,price,note\n"
        f'A,1,2024-01-02,1,5,"{note}"\nB,2,2024-01-03,1,1,short\nC,3,nope,1,1,{note}\n',
    )
    run = load(tmp_path, config(tmp_path, columns={**COLUMNS, "category": "note"}))
    assert run.rows("customer_id, length(category), _source_row") == [
        ("A", size, 1),
        ("B", 5, 2),
    ]
    assert run.quarantine() == [("t.csv", 3, "unparseable date ordered_at (when)")]
    assert run.log() == [("t.csv", 3, 2, 1)]


def test_20b_line_over_max_line_size_is_a_clear_error(tmp_path):
    path = write(tmp_path, "t.csv", GOOD + "C,3,2024-01-04,1," + "9" * 200_000 + "\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, max_line_size=100_000))
    assert msg == (
        f"{path}: a line is longer than max_line_size (100,000 bytes) at line 4 "
        "(counting the header; 200,017 bytes); raise `max_line_size:` if the line is real"
    )


def test_20c_very_long_line_in_a_whitespace_file(tmp_path):
    long_id = "B" * 3_000_000
    write(
        tmp_path,
        "t.txt",
        f"cust order when qty price\nA 1 2024-01-02 1 5\n{long_id} 2 2024-01-03 1 1\n",
    )
    run = load(tmp_path, config(tmp_path, "t.txt"))
    assert run.rows("length(customer_id), _source_row") == [(1, 1), (3_000_000, 2)]
    assert run.log() == [("t.txt", 2, 2, 0)]


# 21 -----------------------------------------------------------------------------------
def test_21_sql_metacharacters_in_names_stay_names(tmp_path):
    evil = '"; DROP TABLE x; --'
    quote = "it's"
    name = "o'; DROP TABLE x; --\".csv"
    write(
        tmp_path,
        name,
        f'"{evil.replace(chr(34), chr(34) * 2)}",{quote},when,qty,price\n'
        "A,1,2024-01-02,1,5\n,2,2024-01-02,1,5\nB,,2024-01-02,1,5\nC,3,2024-01-02,1,5\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table x as select 42 as answer")
    con.close()
    cols = {"customer_id": evil, "order_id": quote, "ordered_at": "when", "quantity": "qty",
            "unit_price": "price"}  # fmt: skip
    run = load(tmp_path, config(tmp_path, name, cols, unique_key=["order_id"]))
    assert run.con.execute("select * from x").fetchall() == [(42,)]
    assert run.rows("customer_id, order_id, _source_file") == [
        ("A", "1", str(tmp_path / name)),
        ("C", "3", str(tmp_path / name)),
    ]
    assert run.quarantine() == [
        (name, 2, f"missing customer_id ({evil})"),
        (name, 3, f"missing order_id ({quote})"),
    ]
    assert run.log() == [(name, 4, 2, 2)]


# 22 -----------------------------------------------------------------------------------
def test_22_schema_change_between_runs_fails_and_keeps_run_1(tmp_path):
    db = tmp_path / "w.duckdb"
    path = write(tmp_path, "t.csv", GOOD + "C,3,2024-99-01,1,1\n")
    load(tmp_path, config(tmp_path)).con.close()  # run 1
    run_1 = snapshot(db)
    # Run 2: the same delivery, but the date column was renamed.
    write(tmp_path, "t.csv", "cust,order,date,qty,price\nA,1,2024-01-02,1,5\n")
    con = duckdb.connect(str(db))
    with pytest.raises(IngestError) as err:
        ingest(con, config(tmp_path), "run-2", log=lambda *_: None, today=TODAY)
    con.close()
    assert str(err.value) == (
        f"{path}: required column not found: 'when' (mapped to ordered_at, required); "
        "columns present: ['cust', 'order', 'date', 'qty', 'price']"
    )
    assert snapshot(db) == run_1
    assert len(run_1["transactions"]) == 2 and len(run_1["quarantine_transactions"]) == 1
    assert [r[1:6] for r in run_1["load_log"]] == [("transactions", str(path), 3, 2, 1)]


# More ------------------------------------------------------------------------------------
def test_23_several_failing_rules_are_joined(tmp_path):
    write(tmp_path, "t.csv", HEADER + " ,,someday,lots,-1\n")
    run = load(tmp_path, config(tmp_path))
    assert run.quarantine() == [
        (
            "t.csv",
            1,
            "missing customer_id (cust); missing order_id (order); "
            "unparseable date ordered_at (when); non-numeric quantity (qty); "
            "non-positive unit_price (price)",
        )
    ]
    raw = run.con.execute("select raw_record from raw.quarantine_transactions").fetchone()[0]
    assert (
        raw
        == '{"cust":" ","order":null,"when":"someday","qty":"lots","price":"-1","_source_row":1}'
    )


def test_24_short_rows_are_quarantined_for_their_field_count(tmp_path):
    # Issue 17: a short row is set aside as a whole (its values may have moved), not padded.
    write(tmp_path, "t.csv", HEADER + "A,1,2024-01-02,1,5\nB,2,2024-01-02\nC,3\n")
    run = load(tmp_path, config(tmp_path))
    assert [r[0] for r in run.rows()] == ["A"]
    assert run.quarantine() == [
        ("t.csv", 2, "wrong field count: 3 fields, 5 expected (line 3)"),
        ("t.csv", 3, "wrong field count: 2 fields, 5 expected (line 4)"),
    ]
    raw = run.con.execute(
        "select raw_record from raw.quarantine_transactions where source_row = 3"
    ).fetchone()[0]
    assert raw == '{"_record":"C,3","_line":4,"_source_row":3}'


def test_25_every_file_of_a_glob_is_reconciled_separately(tmp_path):
    write(tmp_path, "a.csv", GOOD)
    write(tmp_path, "b.csv", HEADER + "C,3,2024-01-04,x,1\nD,4,2024-01-05,1,1\n")
    write(tmp_path, "c.csv", HEADER)
    run = load(tmp_path, config(tmp_path, "*.csv"))
    assert run.log() == [("a.csv", 2, 2, 0), ("b.csv", 2, 1, 1), ("c.csv", 0, 0, 0)]
    assert run.quarantine() == [("b.csv", 1, "non-numeric quantity (qty)")]


def test_26_customers_source_rules_name_their_columns(tmp_path):
    write(tmp_path, "t.csv", GOOD)
    write(
        tmp_path,
        "c.csv",
        "id,signup,born\nA,2020-01-01,1980\nB,2999-01-01,1990\n,2020-01-01,x\nC,,1975.5\n",
    )
    cfg = ProjectConfig(
        data_root=str(tmp_path),
        base_dir=str(tmp_path),
        transactions=SourceConfig(path="t.csv", columns=COLUMNS),
        customers=SourceConfig(
            path="c.csv", columns={"customer_id": "id", "signup_at": "signup", "birth_year": "born"}
        ),
    )
    run = load(tmp_path, cfg)
    assert run.con.execute("select customer_id, birth_year from raw.customers").fetchall() == [
        ("A", 1980)
    ]
    assert run.con.execute(
        "select source_row, reason from raw.quarantine_customers order by 1"
    ).fetchall() == [
        (2, "date in the future signup_at (signup)"),
        (3, "missing customer_id (id); non-integer birth_year (born)"),
        (4, "non-integer birth_year (born)"),
    ]
    assert run.con.execute(
        "select rows_read, rows_loaded, rows_rejected from raw.load_log where source = 'customers'"
    ).fetchall() == [(4, 1, 3)]


def test_27_file_columns_named_like_other_canonical_columns(tmp_path):
    # The file's "order_id" holds customers and its "customer_id" holds orders.
    write(
        tmp_path, "t.csv", "order_id,customer_id,when,amount\nA,1,2024-01-02,5\n,2,2024-01-02,1\n"
    )
    cols = {"customer_id": "order_id", "order_id": "customer_id", "ordered_at": "when",
            "amount": "amount"}  # fmt: skip
    run = load(tmp_path, config(tmp_path, columns=cols))
    assert run.rows("customer_id, order_id, amount") == [("A", "1", 5.0)]
    assert run.quarantine() == [("t.csv", 2, "missing customer_id (order_id)")]


def test_28_blank_header_line_in_a_whitespace_file(tmp_path):
    path = write(tmp_path, "t.txt", "   \nA 1 2024-01-02 1 5\n")
    msg = fails_keeping_previous_load(tmp_path, config(tmp_path, "t.txt"))
    assert msg == f"{path}: the header line is blank"
