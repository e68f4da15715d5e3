"""Ingest: parsing, quarantine with reasons, reconciliation, clear errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.ingest.load import IngestError, ingest
from orchestration.io.config import ProjectConfig, SourceConfig


def _config(tmp_path: Path, path: str, columns: dict, **kw) -> ProjectConfig:
    return ProjectConfig(
        data_root=str(tmp_path),
        base_dir=str(tmp_path),
        transactions=SourceConfig(path=path, columns=columns, **kw),
    )


CSV_COLUMNS = {
    "customer_id": "cust",
    "order_id": "order",
    "ordered_at": "when",
    "quantity": "qty",
    "unit_price": "price",
}


def _run(tmp_path, cfg):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = ingest(con, cfg, "run-1", log=lambda *_: None)
    return con, result


def test_csv_rows_parse_and_bad_rows_are_quarantined_with_reasons(tmp_path):
    (tmp_path / "t.csv").write_text(
        "cust,order,when,qty,price\n"
        "A,1,2024-01-02 10:00:00,2,5.5\n"
        ",2,2024-01-03,1,1\n"  # missing customer
        "B,3,not a date,1,1\n"  # bad date
        "C,4,2024-01-04,two,1\n"  # non-numeric quantity
        "D,5,2024-01-05,1,inf\n"  # non-finite price
        "E,6,2024-01-06,-1,3\n",  # a return: data, not an error
        encoding="utf-8",
    )
    con, result = _run(tmp_path, _config(tmp_path, "t.csv", CSV_COLUMNS))
    read, loaded, rejected = result.totals("transactions")
    assert (read, loaded, rejected) == (6, 2, 4)
    rows = con.execute("select customer_id, amount from raw.transactions order by 1").fetchall()
    assert rows == [("A", 11.0), ("E", -3.0)]
    reasons = dict(
        con.execute("select source_row, reason from raw.quarantine_transactions").fetchall()
    )
    assert reasons == {
        2: "missing customer_id (cust)",
        3: "unparseable date ordered_at (when)",
        4: "non-numeric quantity (qty)",
        5: "non-finite unit_price (price)",
    }
    raw = con.execute(
        "select raw_record from raw.quarantine_transactions where source_row = 3"
    ).fetchone()[0]
    assert '"not a date"' in raw
    log = con.execute("select rows_read, rows_loaded, rows_rejected from raw.load_log").fetchall()
    assert log == [(6, 2, 4)]


def test_missing_required_column_names_file_and_column(tmp_path):
    (tmp_path / "t.csv").write_text("cust,order,qty,price\nA,1,1,1\n")
    with pytest.raises(IngestError) as err:
        _run(tmp_path, _config(tmp_path, "t.csv", CSV_COLUMNS))
    msg = str(err.value)
    assert "t.csv" in msg and "'when'" in msg and "ordered_at" in msg


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(IngestError, match="no file matches .*nope.csv"):
        _run(tmp_path, _config(tmp_path, "nope.csv", CSV_COLUMNS))


def test_failed_ingest_keeps_previous_raw_tables(tmp_path):
    (tmp_path / "good.csv").write_text("cust,order,when,qty,price\nA,1,2024-01-02,1,1\n")
    con, _ = _run(tmp_path, _config(tmp_path, "good.csv", CSV_COLUMNS))
    con.close()
    (tmp_path / "bad.csv").write_text("cust,order,qty,price\nA,1,1,1\n")
    with pytest.raises(IngestError):
        _run(tmp_path, _config(tmp_path, "bad.csv", CSV_COLUMNS))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert con.execute("select count(*) from raw.transactions").fetchone()[0] == 1


def test_whitespace_file_with_crlf_and_derived_order_id(tmp_path):
    (tmp_path / "cd.txt").write_bytes(
        b" customer_id  date number_of_cds  dollar_value\r\n"
        b" 00001 19970101  1   11.77\r\n"
        b" 00002 19970112  5   77.00\r\n"
    )
    cfg = _config(
        tmp_path,
        "cd.txt",
        {
            "customer_id": "customer_id",
            "ordered_at": "date",
            "quantity": "number_of_cds",
            "amount": "dollar_value",
        },  # fmt: skip
        format="whitespace",
        date_format="%Y%m%d",
    )
    con, result = _run(tmp_path, cfg)
    assert result.totals("transactions") == (2, 2, 0)
    rows = con.execute(
        "select customer_id, order_id, cast(ordered_at as date)::varchar, quantity, amount, "
        "unit_price from raw.transactions order by 1"
    ).fetchall()
    assert rows == [
        ("00001", "00001-19970101", "1997-01-01", 1.0, 11.77, 11.77),
        ("00002", "00002-19970112", "1997-01-12", 5.0, 77.0, 15.4),
    ]


def test_parquet_float_customer_ids_become_integral_text_and_cancellations_flagged(tmp_path):
    pd.DataFrame(
        {
            "Invoice": ["1", "C2", "3"],
            "Customer ID": [13085.0, 13085.0, None],
            "InvoiceDate": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "Quantity": [2, -2, 1],
            "Price": [1.5, 1.5, 2.0],
        }
    ).to_parquet(tmp_path / "r.parquet")
    cfg = _config(
        tmp_path,
        "r.parquet",
        {
            "customer_id": "Customer ID",
            "order_id": "Invoice",
            "ordered_at": "InvoiceDate",
            "quantity": "Quantity",
            "unit_price": "Price",
        },  # fmt: skip
        cancellation_prefix="C",
    )
    con, result = _run(tmp_path, cfg)
    assert result.totals("transactions") == (3, 2, 1)
    rows = con.execute(
        "select customer_id, order_id, is_cancellation, amount from raw.transactions order by 2"
    ).fetchall()
    assert rows == [("13085", "1", False, 3.0), ("13085", "C2", True, -3.0)]
    assert con.execute("select source_row from raw.quarantine_transactions").fetchall() == [(3,)]


def test_sql_metacharacters_in_column_and_file_names_stay_names(tmp_path):
    evil = '"; DROP TABLE x; --'
    name = "it's; drop.csv"
    pd.DataFrame({evil: ["A"], "o": ["1"], "d": ["2024-01-01"], "a": ["3.5"]}).to_csv(
        tmp_path / name, index=False
    )
    cfg = _config(tmp_path, name, {"customer_id": evil, "order_id": "o", "ordered_at": "d",
                                   "amount": "a"})  # fmt: skip
    con, result = _run(tmp_path, cfg)
    assert result.totals("transactions") == (1, 1, 0)
    assert con.execute("select customer_id, amount from raw.transactions").fetchall() == [
        ("A", 3.5)
    ]


def test_unconfigured_optional_sources_exist_empty(tmp_path):
    (tmp_path / "t.csv").write_text("cust,order,when,qty,price\nA,1,2024-01-02,1,1\n")
    con, _ = _run(tmp_path, _config(tmp_path, "t.csv", CSV_COLUMNS))
    assert con.execute("select count(*) from raw.customers").fetchone()[0] == 0
    assert con.execute("select count(*) from raw.events").fetchone()[0] == 0
    cols = [r[0] for r in con.execute("describe raw.customers").fetchall()]
    assert cols[:6] == ["customer_id", "signup_at", "birth_year", "age", "gender", "region"]


def test_fixed_width_file(tmp_path):
    (tmp_path / "fw.dat").write_text(
        "CUST  DATE      AMOUNT\nA0001 20240105   12.50\nA0002 2024011x    3.00\n",
        encoding="utf-8",
    )
    cfg = _config(
        tmp_path,
        "fw.dat",
        {"customer_id": "cust", "ordered_at": "date", "amount": "amount"},
        format="fixed_width",
        widths={"cust": (1, 6), "date": (7, 15), "amount": (16, 23)},
        date_format="%Y%m%d",
    )
    con, result = _run(tmp_path, cfg)
    assert result.totals("transactions") == (2, 1, 1)
    assert con.execute("select customer_id, amount from raw.transactions").fetchall() == [
        ("A0001", 12.5)
    ]
    assert con.execute("select source_row, reason from raw.quarantine_transactions").fetchall() == [
        (2, "unparseable date ordered_at (date)")
    ]


def test_csv_with_semicolons_and_latin1(tmp_path):
    (tmp_path / "t.csv").write_bytes(
        "kunde;bestellung;datum;betrag\nMüller;1;2024-01-02;9.5\n".encode("latin-1")
    )
    cfg = _config(
        tmp_path,
        "t.csv",
        {
            "customer_id": "kunde",
            "order_id": "bestellung",
            "ordered_at": "datum",
            "amount": "betrag",
        },
        delimiter=";",
        encoding="latin-1",
    )
    con, _ = _run(tmp_path, cfg)
    assert con.execute("select customer_id, amount from raw.transactions").fetchall() == [
        ("Müller", 9.5)
    ]


def test_new_source_options_have_safe_defaults_and_read_from_yaml(tmp_path):
    from orchestration.io.config import load_config

    default = SourceConfig(path="t.csv")
    assert default.date_formats is None
    assert default.allow_non_positive_price is False
    assert default.unique_key is None
    assert default.max_line_size == 64 * 1024 * 1024
    (tmp_path / "c.yaml").write_text(
        "transactions:\n"
        "  path: t.csv\n"
        "  date_formats: ['%Y-%m-%d', '%d/%m/%Y']\n"
        "  allow_non_positive_price: true\n"
        "  unique_key: [order_id, product_id]\n"
        "  max_line_size: 1000000\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a, order_id: o, product_id: p}\n"
    )
    tx = load_config(tmp_path / "c.yaml").transactions
    assert tx.date_formats == ["%Y-%m-%d", "%d/%m/%Y"]
    assert tx.allow_non_positive_price is True
    assert tx.unique_key == ["order_id", "product_id"]
    assert tx.max_line_size == 1_000_000


@pytest.mark.parametrize("files", [["a.csv", "b.csv"], ["b.csv", "a.csv"]])
def test_published_raw_rows_are_in_file_and_row_order_however_they_were_staged(files):
    """publish() sorts only when the staged rows are out of (file, row) order: both
    ways the published table is in that order, rows and values unchanged."""
    from orchestration.ingest.load_log import publish, staging_tables
    from orchestration.ingest.types import IngestResult
    from orchestration.io.config import CANONICAL

    con = duckdb.connect()
    con.execute("create schema raw")
    staging_tables(con, list(CANONICAL))
    for name in files:  # staged in this order, rows 3, 1, 2 within a file
        for row in (3, 1, 2):
            con.execute(
                "insert into _ok_transactions (customer_id, order_id, ordered_at, amount, "
                "_source_file, _source_row) values (?, ?, timestamp '2024-01-01', ?, ?, ?)",
                [f"c{row}", f"{name}-{row}", row, name, row],
            )
    publish(con, IngestResult(run_id="r"))
    got = con.execute("select _source_file, _source_row, amount from raw.transactions").fetchall()
    assert got == [(f, r, r) for f in ("a.csv", "b.csv") for r in (1, 2, 3)]


def test_staged_rows_already_in_order_are_published_without_a_sort():
    from orchestration.ingest.load_log import file_order

    con = duckdb.connect()
    con.execute("create table t as select 'f' || (i // 10) as f, i % 10 as r from range(100) t(i)")
    assert file_order(con, "t", "f", "r") == ""
    con.execute("insert into t values ('f0', 99)")  # a later row of an earlier file
    assert file_order(con, "t", "f", "r") == " order by f, r"
