"""Issue 17: every value loaded exactly as delivered, or its row quarantined with the rule.

One test per defect of the issue's list (1-4), each naming its input; all call the ingest
directly on a DuckDB file in ``tmp_path`` and check rows read = loaded + quarantined.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.ingest.load import ingest
from orchestration.io.config import ProjectConfig, SourceConfig, load_config
from orchestration.report.data import load_report_data

TODAY = dt.date(2024, 6, 30)
TS = dt.datetime
RETAIL = {
    "order_id": "Invoice",
    "product_id": "StockCode",
    "ordered_at": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "Price",
    "customer_id": "Customer ID",
    "country": "Country",
}
RETAIL_HEADER = "Invoice,StockCode,InvoiceDate,Quantity,Price,Customer ID,Country\n"


def _load(tmp_path: Path, path, columns=None, **kw) -> duckdb.DuckDBPyConnection:
    cfg = ProjectConfig(
        data_root=str(tmp_path),
        base_dir=str(tmp_path),
        transactions=SourceConfig(path=path, columns=columns or RETAIL, **kw),
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = ingest(con, cfg, "run-1", log=lambda *_: None, today=TODAY)
    read, loaded, rejected = result.totals("transactions")
    assert read == loaded + rejected
    counts = con.execute(
        "select (select count(*) from raw.transactions), "
        "(select count(*) from raw.quarantine_transactions)"
    ).fetchone()
    assert counts == (loaded, rejected)
    return con


def _rows(con, cols="customer_id, order_id, quantity, unit_price, country"):
    return con.execute(
        f"select {cols} from raw.transactions order by _source_file, _source_row"
    ).fetchall()


def _quarantine(con) -> list[tuple[int, str]]:
    return con.execute(
        "select source_row, reason from raw.quarantine_transactions order by source_file, "
        "source_row"
    ).fetchall()


# 1. Values never move to another column or row ---------------------------------------
def test_csv_line_with_unquoted_decimal_comma_price_12_50_is_quarantined_not_shifted(tmp_path):
    (tmp_path / "t.csv").write_text(
        RETAIL_HEADER + "X1,P1,2010-05-05 10:00:00,1,2.5,85048,United Kingdom\n"
        "XF1,XF1,2010-05-05 10:00:00,1,12,50,85048,United Kingdom\n"
        "X2,P2,2010-05-05 11:00:00,1,1.25,85049,France\n"
    )
    con = _load(tmp_path, "t.csv")
    assert _rows(con) == [
        ("85048", "X1", 1.0, 2.5, "United Kingdom"),
        ("85049", "X2", 1.0, 1.25, "France"),
    ]
    assert _quarantine(con) == [(2, "wrong field count: 8 fields, 7 expected (line 3)")]
    raw = con.execute("select raw_record from raw.quarantine_transactions").fetchone()[0]
    assert raw == (
        '{"_record":"XF1,XF1,2010-05-05 10:00:00,1,12,50,85048,United Kingdom",'
        '"_line":3,"_source_row":2}'
    )


def test_report_groups_field_count_rejects_of_many_lines_into_one_reason(tmp_path):
    (tmp_path / "t.csv").write_text(
        RETAIL_HEADER
        + "X1,P1,2010-05-05 10:00:00,1,12,50,85048,UK\n" * 3
        + "X2,P2,2010-05-05 10:00:00,1,2.5,,UK\n"
    )
    con = _load(tmp_path, "t.csv")
    quarantine = load_report_data(con, tmp_path).quarantine
    assert quarantine.values.tolist() == [
        ["transactions", "wrong field count: 8 fields, 7 expected", 3],
        ["transactions", "missing customer_id (Customer ID)", 1],
    ]


def test_csv_line_with_unquoted_thousands_quantity_1_000_is_quarantined(tmp_path):
    (tmp_path / "t.csv").write_text(
        RETAIL_HEADER + "X1,P1,2010-05-05 10:00:00,1,000,2.5,85048,UK\n"
        'X2,P2,2010-05-05 11:00:00,"1,000",2.5,85048,UK\n'  # quoted: one non-numeric field
        "X3,P3,2010-05-05 12:00:00,1000,2.5,85048,UK\n"
    )
    con = _load(tmp_path, "t.csv")
    assert _rows(con) == [("85048", "X3", 1000.0, 2.5, "UK")]
    assert _quarantine(con) == [
        (1, "wrong field count: 8 fields, 7 expected (line 2)"),
        (2, "non-numeric quantity (Quantity)"),
    ]


def test_csv_line_with_a_bare_carriage_return_is_one_quarantined_row_not_two(tmp_path):
    (tmp_path / "t.csv").write_bytes(
        (
            RETAIL_HEADER.replace("\n", "\r\n")
            + "X1,P1,2010-05-05 10:00:00,1,2.5,85048,United\rKingdom\r\n"
            + 'X2,P2,2010-05-05 11:00:00,1,2.5,85048,"United\rKingdom"\r\n'  # quoted: data
            + "X3,P3,2010-05-05 12:00:00,1,2.5,\r85049,France\r\n"
        ).encode()
    )
    con = _load(tmp_path, "t.csv")
    assert _rows(con, "order_id, country, _source_row") == [("X2", "United\rKingdom", 2)]
    assert _quarantine(con) == [
        (1, "carriage return outside quotes (line 2)"),
        (3, "carriage return outside quotes (line 4)"),
    ]


def test_csv_unterminated_quote_quarantines_its_line_and_the_next_lines_load(tmp_path):
    (tmp_path / "t.csv").write_text(
        RETAIL_HEADER + "X1,P1,2010-05-05 10:00:00,1,2.5,85048,UK\n"
        'X2,"P2,2010-05-05 11:00:00,1,2.5,85048,UK\n'
        'X3,P3,2010-05-05 12:00:00,1,2.5,85049,"Fr""ance"\n'
        'X4,P4,2010-05-05 13:00:00,1,2.5,85050,"UK\n'
    )
    con = _load(tmp_path, "t.csv")
    assert _rows(con, "order_id, country, _source_row") == [
        ("X1", "UK", 1),
        ("X3", 'Fr"ance', 3),
    ]
    assert _quarantine(con) == [
        (2, "unterminated quote (line 3)"),
        (4, "unterminated quote (line 5)"),
    ]


def test_csv_quotes_inside_unquoted_fields_and_hash_lines_are_data(tmp_path):
    (tmp_path / "t.csv").write_text(
        "Customer ID,Invoice,InvoiceDate,Quantity,Price,StockCode,Country\n"
        '#85048,X1,2010-05-05 10:00:00,1,2.5,TV 32" screen,UK\n'
        '#85049,X2,2010-05-05 11:00:00,1,2.5,"5\'10"" rack",UK\n'
        '85050,X3,2010-05-05 12:00:00,1,2.5,"a ""quoted"" word, and\nmore",UK\n'
    )
    con = _load(tmp_path, "t.csv")
    assert _rows(con, "customer_id, product_id, _source_row") == [
        ("#85048", 'TV 32" screen', 1),
        ("#85049", "5'10\" rack", 2),
        ("85050", 'a "quoted" word, and\nmore', 3),
    ]
    assert _quarantine(con) == []


def test_whitespace_line_with_an_extra_or_a_missing_field_is_quarantined(tmp_path):
    (tmp_path / "t.txt").write_text(
        "cust day qty amount\n00001 19970101 1 11.77\n00002 19970102 1 12 50\n"
        "00003 19970103 2\n00004 19970104 1 9.5\n"
    )
    cols = {"customer_id": "cust", "ordered_at": "day", "quantity": "qty", "amount": "amount"}
    con = _load(tmp_path, "t.txt", cols, date_format="%Y%m%d")
    assert _rows(con, "customer_id, amount, _source_row") == [
        ("00001", 11.77, 1),
        ("00004", 9.5, 4),
    ]
    assert _quarantine(con) == [
        (2, "wrong field count: 5 fields, 4 expected (line 3)"),
        (3, "wrong field count: 3 fields, 4 expected (line 4)"),
    ]


# 2. Time-zone offsets -----------------------------------------------------------------
OFFSETS = [
    ("2010-03-01T23:30:00-08:00", TS(2010, 3, 2, 7, 30)),
    ("2010-03-01T23:30:00+05:00", TS(2010, 3, 1, 18, 30)),
    ("2010-03-01T23:30:00Z", TS(2010, 3, 1, 23, 30)),
    ("2010-03-01 23:30:00 UTC", TS(2010, 3, 1, 23, 30)),
    ("2010-03-01 23:30+0530", TS(2010, 3, 1, 18, 0)),
    ("2010-03-01 23:30:00.25-02", TS(2010, 3, 2, 1, 30, 0, 250000)),
    ("2010-03-01 23:30:00", TS(2010, 3, 1, 23, 30)),  # no offset: as written
]


def test_text_timestamps_with_offsets_minus_0800_plus_0500_z_are_converted_to_utc(tmp_path):
    lines = "".join(f"C{i},O{i},{text},1,1\n" for i, (text, _) in enumerate(OFFSETS))
    (tmp_path / "t.csv").write_text("cust,order,when,qty,price\n" + lines)
    cols = {"customer_id": "cust", "order_id": "order", "ordered_at": "when",
            "quantity": "qty", "unit_price": "price"}  # fmt: skip
    con = _load(tmp_path, "t.csv", cols)
    assert [r[0] for r in _rows(con, "ordered_at")] == [want for _, want in OFFSETS]
    con.close()


def test_parquet_text_offsets_load_like_parquet_timestamps_with_a_zone(tmp_path):
    texts = [text for text, _ in OFFSETS[:-1]]
    instants = [pd.Timestamp(t.replace(" UTC", "Z")).tz_convert("America/New_York") for t in texts]
    pq.write_table(
        pa.table(
            {
                "cust": [f"C{i}" for i in range(len(texts))],
                "text": texts,
                "aware": pa.array(instants),
                "amount": [1.0] * len(texts),
            }
        ),
        tmp_path / "t.parquet",
    )
    loaded = {}
    for column in ("text", "aware"):
        cols = {"customer_id": "cust", "ordered_at": column, "amount": "amount"}
        con = _load(tmp_path, "t.parquet", cols)
        loaded[column] = [r[0] for r in _rows(con, "ordered_at")]
        con.close()
        (tmp_path / "w.duckdb").unlink()
    assert loaded["text"] == loaded["aware"] == [want for _, want in OFFSETS[:-1]]


def test_offsets_beyond_18_hours_and_zone_names_are_quarantined(tmp_path):
    (tmp_path / "t.csv").write_text(
        "cust,order,when,qty,price\n"
        "A,1,2010-03-01T23:30:00+25:00,1,1\n"
        "B,2,2010-03-01T23:30:00-18:30,1,1\n"
        "C,3,2010-03-01T23:30:00+05:75,1,1\n"
        "D,4,2010-03-01 23:30:00 PST,1,1\n"
        "E,5,2010-03-01 23:30:00 America/New_York,1,1\n"
        "F,6,2010-03-01+05:00,1,1\n"
        "G,7,2010-03-01T23:30:00-18:00,1,1\n"
    )
    cols = {"customer_id": "cust", "order_id": "order", "ordered_at": "when",
            "quantity": "qty", "unit_price": "price"}  # fmt: skip
    con = _load(tmp_path, "t.csv", cols)
    assert _rows(con, "customer_id, ordered_at") == [("G", TS(2010, 3, 2, 17, 30))]
    out_of_range = "time-zone offset out of range ordered_at (when)"
    unparseable = "unparseable date ordered_at (when)"
    assert _quarantine(con) == [
        (1, out_of_range),
        (2, out_of_range),
        (3, out_of_range),
        (4, unparseable),
        (5, unparseable),
        (6, unparseable),
    ]


# 3. One customer id, one customer -----------------------------------------------------
def test_parquet_float_and_csv_text_ids_with_tab_zwsp_nbsp_are_one_customer_each(tmp_path):
    pq.write_table(
        pa.table(
            {
                "Invoice": ["P1", "P2", "P3"],
                "Customer ID": [13085.0, 12346.0, 7.0],
                "InvoiceDate": pa.array([dt.datetime(2010, 1, 1)] * 3),
                "Quantity": [1, 1, 1],
                "Price": [1.0, 1.0, 1.0],
            }
        ),
        tmp_path / "a.parquet",
    )
    ids = ["13085.0", "13085", "13085\t", "\u200b13085", "\u00a013085\u00a0", "12346.00",
           " 12346\u2060", "\ufeff12346", "007", "007.0", "7"]  # fmt: skip
    (tmp_path / "b.csv").write_text(
        "Invoice,Customer ID,InvoiceDate,Quantity,Price\n"
        + "".join(f'C{i},"{c}",2010-01-02,1,1\n' for i, c in enumerate(ids)),
        encoding="utf-8",
    )
    cols = {k: RETAIL[k] for k in ("order_id", "customer_id", "ordered_at", "quantity",
                                   "unit_price")}  # fmt: skip
    con = _load(tmp_path, ["a.parquet", "b.csv"], cols)
    assert _rows(con, "order_id, customer_id") == [
        ("P1", "13085"), ("P2", "12346"), ("P3", "7"),
        ("C0", "13085"), ("C1", "13085"), ("C2", "13085"), ("C3", "13085"), ("C4", "13085"),
        ("C5", "12346"), ("C6", "12346"), ("C7", "12346"),
        ("C8", "007"), ("C9", "007"), ("C10", "7"),
    ]  # fmt: skip
    customers = con.execute("select count(distinct customer_id) from raw.transactions")
    assert customers.fetchone()[0] == 4  # 13085, 12346, 7 and 007 (leading zeros kept)


# 4. One bad value is quarantined; the run goes on ------------------------------------
def test_price_1_2e14_and_1e308_are_quarantined_and_every_amount_fits_decimal_18_4(tmp_path):
    (tmp_path / "t.csv").write_text(
        RETAIL_HEADER + "X1,P1,2010-05-05 10:00:00,1,2.5,85048,UK\n"
        "X2,P2,2010-05-05 10:00:00,1,120000000000000,85048,UK\n"
        "X3,P3,2010-05-05 10:00:00,1,1e308,85048,UK\n"
        "X4,P4,2010-05-05 10:00:00,1e15,1,85048,UK\n"
        "X5,P5,2010-05-05 10:00:00,2,49999999999999.99,85048,UK\n"
    )
    con = _load(tmp_path, "t.csv")
    assert [r[1] for r in _rows(con)] == ["X1", "X5"]
    assert _quarantine(con) == [
        (2, "out of range amount (quantity × unit_price)"),
        (3, "out of range amount (quantity × unit_price)"),
        (4, "out of range quantity (Quantity); out of range amount (quantity × unit_price)"),
    ]
    # What stg_transactions does with every loaded row (macros/cross_db.sql: type_money).
    con.execute("select cast(amount as decimal(18, 4)), cast(quantity as decimal(18, 4)) "
                "from raw.transactions").fetchall()  # fmt: skip


def test_dates_in_year_1_and_1_bc_are_quarantined_by_the_earliest_date_window(tmp_path):
    duckdb.sql(
        "copy (select * from (values (1, 'A', date '0001-01-01'), (2, 'B', date '0001-01-01 (BC)'),"
        " (3, 'C', date '1899-12-31'), (4, 'D', date '1900-01-01')) t(qty, cust, day)) "
        f"to '{tmp_path / 'd.parquet'}' (format parquet)"
    )
    (tmp_path / "t.csv").write_text(
        "cust,day,qty\nE,0001-01-01,1\nF,0000-06-01,1\nG,1900-01-01 00:00:00,1\n"
    )
    cols = {"customer_id": "cust", "ordered_at": "day", "amount": "qty"}
    con = _load(tmp_path, ["d.parquet", "t.csv"], cols)
    assert _rows(con, "customer_id, ordered_at") == [
        ("D", TS(1900, 1, 1)),
        ("G", TS(1900, 1, 1)),
    ]
    before = "date before 1900-01-01 ordered_at (day)"
    assert _quarantine(con) == [(1, before), (2, before), (3, before), (1, before), (2, before)]
    con.close()
    (tmp_path / "w.duckdb").unlink()
    # The window is a setting (docs/data_contract.md).
    con = _load(tmp_path, ["d.parquet", "t.csv"], cols, earliest_date=dt.date(1, 1, 1))
    assert [r[0] for r in _rows(con, "customer_id")] == ["A", "C", "D", "E", "G"]
    assert [r[1] for r in _quarantine(con)] == [
        "date before 0001-01-01 ordered_at (day)",
        "date before 0001-01-01 ordered_at (day)",
    ]


def test_earliest_date_defaults_to_1900_and_reads_from_yaml(tmp_path):
    assert SourceConfig(path="t.csv").earliest_date == dt.date(1900, 1, 1)
    (tmp_path / "c.yaml").write_text(
        "transactions:\n  path: t.csv\n  earliest_date: 2000-01-01\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a}\n"
    )
    assert load_config(tmp_path / "c.yaml").transactions.earliest_date == dt.date(2000, 1, 1)
    (tmp_path / "c.yaml").write_text(
        "transactions:\n  path: t.csv\n  earliest_date: someday\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a}\n"
    )
    with pytest.raises(ValueError, match="transactions.earliest_date"):
        load_config(tmp_path / "c.yaml")


def test_parquet_nan_inf_and_1e20_float_customer_ids_are_quarantined_by_row(tmp_path):
    pq.write_table(
        pa.table(
            {
                "Invoice": ["1", "2", "3", "4", "5", "6"],
                "Customer ID": [13085.0, float("nan"), float("inf"), 1e20, 2.0**53, None],
                "InvoiceDate": pa.array([dt.datetime(2010, 1, 1)] * 6),
                "Quantity": [1] * 6,
                "Price": [1.0] * 6,
            }
        ),
        tmp_path / "r.parquet",
    )
    cols = {k: RETAIL[k] for k in ("order_id", "customer_id", "ordered_at", "quantity",
                                   "unit_price")}  # fmt: skip
    con = _load(tmp_path, "r.parquet", cols)
    assert _rows(con, "order_id, customer_id") == [("1", "13085"), ("5", "9007199254740992")]
    assert _quarantine(con) == [
        (2, "non-finite customer_id (Customer ID)"),
        (3, "non-finite customer_id (Customer ID)"),
        (4, "inexact float customer_id (Customer ID)"),
        (6, "missing customer_id (Customer ID)"),
    ]
