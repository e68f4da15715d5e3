"""Fuzz test of the ingest (issue 17): generated CSV + Parquet deliveries against a reference.

Each delivery is one CSV file (random delimiter, encoding, line ends, quoting, blank lines,
and now and then a broken line: a field too many or too few, a bare carriage return, an
unterminated quote, text after a closing quote) and one Parquet file (ids as floats,
integers or text; dates as naive or zoned timestamps, dates or text with offsets; numbers
as floats, integers or text). The reference below reads the same bytes by the documented
rules (orchestration/ingest/csv_records.py, value_rules.py), written again independently, and
the property is: every source row is loaded with exactly the reference's values or
quarantined with the reference's rules, and rows read = loaded + quarantined per file.
Deterministic (derandomize): the same 200 deliveries on every run.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.ingest.load import ingest
from orchestration.io.config import ProjectConfig, SourceConfig

TODAY = dt.date(2024, 6, 30)
HEADER = ["cust", "order", "when", "qty", "price", "note"]
COLUMNS = {"customer_id": "cust", "order_id": "order", "ordered_at": "when",
           "quantity": "qty", "unit_price": "price", "category": "note"}  # fmt: skip
WHITE = (
    "".join(c for c in map(chr, range(0x3001)) if c.isspace())
    + "\u200b\u200c\u200d\u2060\ufeff\u180e"
)
EARLIEST = dt.datetime(1900, 1, 1)


# -- the reference: the documented rules, again ------------------------------------------
def ref_records(text: str, delim: str) -> list[tuple[int, list[str] | None, list[str]]]:
    """(line, fields or None, broken rules) per non-empty record, character by character."""
    eol = "\r" if "\n" not in text and "\r" in text else "\n"
    stray = "carriage return" if eol == "\n" else "line feed"
    n, i, line, out = len(text), 0, 1, []

    def record_end(j):
        if j >= n:
            return n, n
        if text[j] == eol:
            return j, j + 1
        if eol == "\n" and text[j] == "\r" and (j + 1 == n or text[j + 1] == "\n"):
            return j, min(j + 2, n)
        return None

    while i < n:
        end = record_end(i)
        if end is not None and end[0] == i:  # an empty line
            line += text.count(eol, i, end[1])
            i = end[1]
            continue
        fields, broken, j, nxt, quote_error = [], [], i, None, None
        while nxt is None and quote_error is None:
            if j < n and text[j] == '"':
                opened, k, value = j, j + 1, ""
                while True:
                    q = text.find('"', k)
                    if q < 0:
                        quote_error = "unterminated quote"
                        break
                    value += text[k:q]
                    if text[q + 1 : q + 2] == '"':
                        value, k = value + '"', q + 2
                        continue
                    break
                if quote_error:
                    break
                if text.startswith(delim, q + 1):
                    fields.append(value)
                    j = q + 1 + len(delim)
                    continue
                if record_end(q + 1) is None:
                    later = eol in text[opened:q]
                    quote_error = "unterminated quote" if later else "text after closing quote"
                    break
                fields.append(value)
                nxt = record_end(q + 1)[1]
                continue
            k = j
            while True:
                if text.startswith(delim, k):
                    fields.append(text[j:k])
                    j = k + len(delim)
                    break
                end = record_end(k)
                if end is not None:
                    fields.append(text[j:k])
                    nxt = end[1]
                    break
                if text[k] in "\r\n" and not broken:
                    broken = [f"{stray} outside quotes"]
                k += 1
        if quote_error:  # the record's first line is set aside; reading resumes after it
            e = text.find(eol, i)
            nxt, fields, broken = (n if e < 0 else e + 1), None, [quote_error]
        out.append((line, fields, broken))
        line += text.count(eol, i, nxt)
        i = nxt
    return out


def ref_text(value) -> str | None:
    t = None if value is None else str(value).strip(WHITE)
    return t or None


def ref_id(value) -> tuple[str | None, str | None]:
    """(canonical id, rule broken)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, "non-finite"
        if abs(value) > 2**53:
            return None, "inexact float"
        return (str(int(value)) if value == int(value) else repr(value)), None
    if isinstance(value, int):
        return str(value), None
    t = ref_text(value)
    m = re.fullmatch(r"([+-]?[0-9]+)\.0+", t or "")
    return (m[1] if m else t), None


def ref_number(value) -> tuple[float | None, str | None]:
    if isinstance(value, (int, float)):
        return float(value), None
    t = ref_text(value)
    if t is None:
        return None, None
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", t, re.I):
        return float(t), None
    return None, "non-numeric"


DATE = r"(\d{4})-(\d{1,2})-(\d{1,2})"
TIME = r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
ISO = re.compile(rf"{DATE}(?:[T ]{TIME}(?: ?(Z|z|UTC)| ?([+-])(\d{{2}})(?::?(\d{{2}}))?)?)?")


def ref_time(value) -> tuple[dt.datetime | None, str | None]:
    if value is None or isinstance(value, dt.datetime):
        return value, None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day), None
    t = ref_text(value)
    if t is None:
        return None, None
    m = ISO.fullmatch(t)
    if not m:
        return None, "unparseable date"
    y, mo, d, h, mi, s, frac, _, sign, oh, om = m.groups()
    offset = 0
    if sign:
        offset = int(oh) * 60 + int(om or 0)
        if offset > 18 * 60 or int(om or 0) >= 60:
            return None, "time-zone offset out of range"
        offset *= -1 if sign == "-" else 1
    try:
        local = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                            int((frac or "0")[:6].ljust(6, "0")))  # fmt: skip
    except ValueError:
        return None, "unparseable date"
    try:
        return local - dt.timedelta(minutes=offset), None
    except OverflowError:  # before year 1: DuckDB has it, and it is before 1900
        return dt.datetime.min, None


def ref_row(raw: dict) -> tuple[tuple | None, set[str]]:
    """(loaded values, rules broken) for one row of values by source column."""
    rules: set[str] = set()
    cust, why = ref_id(raw["cust"])
    if why:
        rules.add(f"{why} customer_id")
    elif cust is None:
        rules.add("missing customer_id")
    order, _ = ref_id(raw["order"])
    if order is None:
        rules.add("missing order_id")
    when, why = ref_time(raw["when"])
    if why:
        rules.add(f"{why} ordered_at")
    elif when is None:
        rules.add("missing ordered_at")
    else:
        if when.date() > TODAY + dt.timedelta(days=1):
            rules.add("date in the future ordered_at")
        if when < EARLIEST:
            rules.add("date before 1900-01-01 ordered_at")
    nums = {}
    for name, col in (("quantity", "qty"), ("unit_price", "price")):
        x, why = ref_number(raw[col])
        nums[name] = x
        if why:
            rules.add(f"{why} {name}")
        elif x is None:
            rules.add(f"missing {name}")
        elif not math.isfinite(x):
            rules.add(f"non-finite {name}")
        elif name == "quantity" and abs(x) >= 1e14:
            rules.add("out of range quantity")
    q, p = nums["quantity"], nums["unit_price"]
    amount = q * p if q is not None and p is not None else None
    if amount is not None and math.isfinite(q) and math.isfinite(p) and not math.isfinite(amount):
        rules.add("non-finite amount")
    if amount is not None and math.isfinite(amount) and abs(amount) >= 1e14:
        rules.add("out of range amount")
    # NULL decides nothing; a NaN price or quantity is neither negative nor positive.
    q_positive = q is not None and q > 0
    if p is not None and not math.isnan(p) and (p < 0 or (p == 0 and q_positive)):
        rules.add("non-positive unit_price")
    if rules:
        return None, rules
    return (cust, order, when, q, p, amount, ref_text(raw["note"])), rules


# -- generated deliveries ---------------------------------------------------------------
def mostly(good, bad):
    """``good`` about five times in six (hypothesis leans to small numbers, so 5 is bad):
    most rows should load, so that their values are checked."""
    return st.integers(0, 5).flatmap(lambda i: bad if i == 5 else good)


WHITE_PADS = st.sampled_from([" ", "\t", "\u00a0", "\u200b", "\ufeff", "\u3000", "\u2060"])
PADS = mostly(st.just(""), WHITE_PADS)
IDS = mostly(
    st.one_of(
        st.integers(0, 99999).map(str),
        st.integers(0, 99999).map(lambda i: f"{i}.0"),
        st.integers(0, 999).map(lambda i: f"00{i}"),
    ),
    st.sampled_from(["A-1", "x y", "C#9", "", "1e5", "+12", "12.50", "7.00", "-3.0", "é"]),
)
NUMBERS = mostly(
    st.one_of(
        st.integers(1, 50).map(str),
        st.floats(0.01, 1e6).map(repr),
        st.sampled_from(["12.5", "+3", ".5", "5.", "1e3", "1E-2", " 7 ", "\u00a02"]),
    ),
    st.sampled_from(
        [
            "0",
            "-2",
            "-0.0",
            "1.2e14",
            "1e308",
            "99999999999999",
            "NaN",
            "inf",
            "-Infinity",
            "12,50",
            "1,000",
            "1 000",
            "abc",
            "",
            "0x1A",
        ]
    ),  # fmt: skip
)
NOTES = mostly(
    st.text(alphabet=" abcé€ß#'", max_size=8),
    st.text(alphabet=' ab,;|\t"\n\r', max_size=8),
)


@st.composite
def timestamps(draw) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(["01/02/2010", "2010-03-01 PST", "20100301", "yesterday",
                                     "2010-03-01 10:00:00 America/New_York", "", "2010-03-01Z"]))  # fmt: skip
    y = draw(
        mostly(st.sampled_from([2010, 2023, 1999, 1900]), st.sampled_from([1, 1899, 2024, 2025]))
    )
    mo = draw(mostly(st.integers(1, 12), st.just(13)))
    d = draw(mostly(st.integers(1, 28), st.integers(29, 31)))
    text = f"{y:04d}-{mo:0{draw(st.sampled_from([1, 2]))}d}-{d:02d}"
    if draw(st.booleans()):
        h, mi = draw(mostly(st.integers(0, 23), st.just(25))), draw(st.integers(0, 59))
        text += f"{draw(st.sampled_from(['T', ' ']))}{h:02d}:{mi:02d}"
        if draw(st.booleans()):
            text += f":{draw(st.integers(0, 59)):02d}"
            if draw(st.booleans()):
                digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=9))
                text += "." + "".join(map(str, digits))
        zone = draw(st.sampled_from(["", "", "Z", "z", "UTC", " UTC", "±HH:MM", "±HHMM", "±HH"]))
        if zone.startswith("±"):
            hh = draw(mostly(st.sampled_from([0, 1, 5, 8, 14, 18]), st.just(19)))
            mm = draw(mostly(st.sampled_from([0, 30, 45]), st.just(75)))
            sign = draw(st.sampled_from(["+", "-"]))
            zone = {"±HH:MM": f"{sign}{hh:02d}:{mm:02d}", "±HHMM": f"{sign}{hh:02d}{mm:02d}",
                    "±HH": f"{sign}{hh:02d}"}[zone]  # fmt: skip
        text += zone
    return text


@st.composite
def csv_delivery(draw) -> tuple[bytes, str, str]:
    """(file bytes, delimiter, encoding)."""
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from(["minimal", "all", "careless"]))
    eols = draw(st.sampled_from([["\n"], ["\r\n"], ["\n", "\r\n"]]))

    def render(value: str) -> str:
        special = any(c in value for c in (delim, '"', "\n", "\r"))
        if (
            quoting == "all"
            or (quoting == "minimal" and special)
            or (special and draw(st.booleans()))
        ):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delim.join(render(h) for h in HEADER)]
    for _ in range(draw(st.integers(0, 10))):
        pad = draw(PADS)
        fields = [pad + draw(IDS) + draw(PADS), draw(IDS), draw(timestamps()), draw(NUMBERS),
                  draw(NUMBERS), draw(NOTES)]  # fmt: skip
        line = delim.join(render(f) for f in fields)
        defect = draw(st.sampled_from(["none"] * 12 + ["extra", "short", "cr", "open", "after"]))
        line = {
            "none": line,
            "extra": line + delim + "x",
            "short": line[: line.rfind(delim)] if delim in line else line,
            "cr": line.replace(delim, "\r" + delim, 1),
            "open": line + delim + '"unclosed',
            "after": '"a"b' + delim + line,
        }[defect]
        lines.append(line)
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # an empty line: not a record
    text = "".join(line + draw(st.sampled_from(eols)) for line in lines)
    if draw(st.booleans()):  # no line end after the last line
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]))
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        encoding, data = "utf-8", text.encode("utf-8")
    if encoding == "utf-8-sig":
        encoding = "utf-8"  # the BOM is there; DuckDB and the ingest drop it
    return data, delim, encoding


@st.composite
def parquet_delivery(draw) -> pa.Table:
    n = draw(st.integers(0, 8))
    cust_type = draw(st.sampled_from(["float", "int", "text"]))
    when_type = draw(st.sampled_from(["naive", "zoned", "date", "text"]))
    num_type = draw(st.sampled_from(["float", "int", "text"]))
    odd = st.sampled_from([math.nan, math.inf, -math.inf, 1e20, 1.2e14, 0.0, -3.0, None])
    cust = {
        "float": mostly(st.sampled_from([13085.0, 7.0, 12.5, 2.0**53]), odd),
        "int": st.integers(0, 10**12),
        "text": st.builds(lambda a, b, c: a + b + c, PADS, IDS, PADS),
    }[cust_type]
    instants = mostly(
        st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2024, 6, 30)),
        st.datetimes(dt.datetime(1899, 12, 1), dt.datetime(2025, 12, 31)),
    )
    when = {
        "naive": mostly(instants, st.just(dt.datetime(1, 1, 1))),
        "zoned": instants,
        "date": mostly(
            st.dates(dt.date(1990, 1, 1), dt.date(2024, 7, 1)),
            st.dates(dt.date(1, 1, 1), dt.date(2030, 1, 1)),
        ),  # fmt: skip
        "text": timestamps(),
    }[when_type]
    nums = {
        "float": mostly(st.floats(0.01, 1e6), odd),
        "int": mostly(st.integers(1, 10**6), st.integers(-5, 0)),
        "text": NUMBERS,
    }[num_type]
    rows = [
        (draw(cust), draw(IDS), draw(when), draw(nums), draw(nums), draw(NOTES)) for _ in range(n)
    ]
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    types = {"float": pa.float64(), "int": pa.int64(), "text": pa.string()}
    when_arrow = {"naive": pa.timestamp("us"), "zoned": pa.timestamp("us", tz="UTC"),
                  "date": pa.date32(), "text": pa.string()}[when_type]  # fmt: skip
    when_col = pa.array(cols[2], when_arrow)
    if when_type == "zoned":  # the same instants, shown in another zone
        when_col = when_col.cast(
            pa.timestamp("us", tz=draw(st.sampled_from(["Asia/Kolkata", "America/Los_Angeles"])))
        )
    return pa.table({
        "cust": pa.array(cols[0], types[cust_type]), "order": pa.array(cols[1], pa.string()),
        "when": when_col, "qty": pa.array(cols[3], types[num_type]),
        "price": pa.array(cols[4], types[num_type]), "note": pa.array(cols[5], pa.string()),
    })  # fmt: skip


def expected_csv(data: bytes, delim: str, encoding: str) -> dict:
    text = data.decode(encoding)
    text = text[1:] if text.startswith("\ufeff") else text
    records = ref_records(text, delim)
    header, fields = records[0][1], len(records[0][1])
    assert header == HEADER
    out = {}
    for row, (line, values, broken) in enumerate(records[1:], start=1):
        reasons = [f"{why} (line {line})" for why in broken]
        if values is not None and len(values) != fields:
            reasons.append(
                f"wrong field count: {len(values)} fields, {fields} expected (line {line})"
            )
        if reasons:
            out[row] = ("structure", "; ".join(reasons))
        else:
            loaded, rules = ref_row(dict(zip(HEADER, values, strict=True)))
            out[row] = ("loaded", loaded) if loaded else ("quarantined", rules)
    return out


def expected_parquet(table: pa.Table) -> dict:
    out = {}
    for row, raw in enumerate(table.to_pylist(), start=1):
        if isinstance(raw["when"], dt.datetime) and raw["when"].tzinfo is not None:
            raw["when"] = raw["when"].astimezone(dt.UTC).replace(tzinfo=None)
        loaded, rules = ref_row(raw)
        out[row] = ("loaded", loaded) if loaded else ("quarantined", rules)
    return out


def actual(con: duckdb.DuckDBPyConnection, file: str) -> dict:
    out = {}
    for row, *values in con.execute(
        "select _source_row, customer_id, order_id, ordered_at, quantity, unit_price, amount, "
        "category from raw.transactions where _source_file = ?",
        [file],
    ).fetchall():
        out[row] = ("loaded", tuple(values))
    for row, reason in con.execute(
        "select source_row, reason from raw.quarantine_transactions where source_file = ?", [file]
    ).fetchall():
        assert row not in out, (file, row)
        if reason.startswith(("wrong field count", "unterminated", "text after", "carriage")):
            out[row] = ("structure", reason)
        else:
            out[row] = ("quarantined", {re.sub(r" \([^()]*\)$", "", r) for r in reason.split("; ")})
    return out


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(csv=csv_delivery(), table=parquet_delivery())
def test_every_row_is_loaded_exactly_or_quarantined_with_its_rule(csv, table):
    data, delim, encoding = csv
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "d.csv").write_bytes(data)
        pq.write_table(table, folder / "d.parquet")
        cfg = ProjectConfig(
            data_root=tmp, base_dir=tmp,
            transactions=SourceConfig(path=["d.csv", "d.parquet"], columns=COLUMNS,
                                      delimiter=delim, encoding=encoding),
        )  # fmt: skip
        con = duckdb.connect(str(folder / "w.duckdb"))
        try:
            result = ingest(con, cfg, "fuzz", log=lambda *_: None, today=TODAY)
            for name, want in (("d.csv", expected_csv(data, delim, encoding)),
                               ("d.parquet", expected_parquet(table))):  # fmt: skip
                file = str(folder / name)
                got = actual(con, file)
                assert got == want, name
                (load,) = [f for f in result.files if f.file == file]
                assert load.rows_read == load.rows_loaded + load.rows_rejected == len(want)
        finally:
            con.close()
