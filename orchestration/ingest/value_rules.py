"""Row-level rules: every mapped column parsed into its canonical type, or a reason.

:func:`build_select` turns the temp view ``src`` (one source file or table) into the
canonical columns plus ``_reason`` (empty when the row is valid). Each failing rule adds
``<rule> <canonical> (<your column>)``; several are joined with ``'; '``.

Parsing, the same for every source type (docs/data_contract.md):

* Text is trimmed of white space and zero-width characters at both ends (:data:`TRIMMED`:
  tab, NBSP, the Unicode spaces, ZWSP, BOM ...); what is left empty is missing.
* Ids (``customer_id``, ``order_id``, ``product_id``) are text; an integral number written
  as a float (``13085.0``, a Parquet float 13085.0) is the integer (``13085``); leading
  zeros and everything inside the id are kept (``007`` stays ``007``). A float id that is
  NaN or infinite (``non-finite``) or beyond 2^53 (``inexact float``: a float cannot hold
  it exactly) is quarantined.
* Numbers: DuckDB's cast of the trimmed text to DOUBLE (decimal or exponent notation;
  ``,`` is never a separator: ``12,50`` is ``non-numeric``). ``NaN`` / ``inf`` are
  ``non-finite``; a quantity or amount with ``|x| >= 1e14`` is ``out of range``, beyond
  the DECIMAL(18,4) the marts sum in.
* Dates without ``date_format(s)``: ISO 8601, ``YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]]``
  with an optional UTC offset after the time (``Z``, ``UTC``, ``+05:00``, ``-0800``,
  ``+05``), converted to UTC like a Parquet timestamp with a time zone; an offset beyond
  ±18:00 is ``time-zone offset out of range``; anything else is ``unparseable date``.
  A format with ``%z`` converts the same way. Dates before ``earliest_date`` (default
  1900-01-01) or after the load date + 1 day are quarantined.
"""

from __future__ import annotations

import datetime as dt

from orchestration.io.config import CANONICAL, REQUIRED, SourceConfig
from orchestration.io.sql import ident, literal

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
TEXT_TYPES = ("VARCHAR", "BLOB")
ID_COLUMNS = ("customer_id", "order_id", "product_id")
# Python's str.isspace() characters (3.11) and the zero-width ones: ZWSP, ZWNJ, ZWJ, word
# joiner, BOM / zero-width no-break space, Mongolian vowel separator.
TRIMMED = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff\u180e"
)
_CLASS = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in TRIMMED) + "]"
MAX_EXACT_FLOAT_ID = 2**53
DECIMAL_LIMIT = 1e14  # DECIMAL(18,4): 14 digits before the point
MAX_OFFSET_MINUTES = 18 * 60
_DATE = r"\d{4}-\d{1,2}-\d{1,2}"
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
NAIVE_TS = rf"{_DATE}(?:[T ]{_TIME})?"
# Groups: 1 the local time, 2 Z/UTC, 3 the sign, 4 hours, 5 minutes.
OFFSET_TS = rf"({_DATE}[T ]{_TIME}) ?(?:(Z|z|UTC)|([+-])(\d{{2}})(?::?(\d{{2}}))?)"


def trimmed(text: str) -> str:
    """Text trimmed of :data:`TRIMMED` at both ends, NULL when nothing is left."""
    cut = f"regexp_replace({text}, {literal(f'^{_CLASS}+|{_CLASS}+$')}, '', 'g')"
    # Most values start and end with a visible ASCII character: no regex for them.
    plain = f"ord(left({text}, 1)) between 33 and 126 and ord(right({text}, 1)) between 33 and 126"
    return f"nullif(case when {plain} then {text} else {cut} end, '')"


def _base(source_type: str) -> str:
    return source_type.split("(")[0].upper()


def _input(col: str, source_type: str, target: str) -> str:
    """The value the parse starts from: typed values as they are, text trimmed."""
    c, base = ident(col), _base(source_type)
    typed = base in NUMERIC_TYPES and target in ("DOUBLE", "INTEGER")
    typed |= base in FLOAT_TYPES and target == "VARCHAR"
    typed |= (base.startswith("TIMESTAMP") or base == "DATE") and target == "TIMESTAMP"
    if typed:
        return c
    text = f"cast({c} as varchar)"
    return trimmed(text) if base in TEXT_TYPES or target != "VARCHAR" else text


def _parse(name: str, source_type: str, target: str, cfg: SourceConfig) -> tuple[str, str]:
    """(value, why): SQL for the parsed value of ``_in_<name>`` and for the rule it breaks
    (NULL when it parses)."""
    v, base = ident(f"_in_{name}"), _base(source_type)
    if target == "VARCHAR":
        if base in FLOAT_TYPES:
            exact = f"isfinite({v}) and abs({v}) <= {MAX_EXACT_FLOAT_ID}"
            integral = f"cast(cast({v} as bigint) as varchar)"
            value = f"case when {exact} and {v} = trunc({v}) then {integral} "
            if name not in ID_COLUMNS:
                return value + f"else cast({v} as varchar) end", "null"
            value += f"when {exact} then cast({v} as varchar) end"
            why = (
                f"case when not isfinite({v}) then 'non-finite' "
                f"when not ({exact}) then 'inexact float' end"
            )
            return value, why
        if name in ID_COLUMNS:
            whole = f"contains({v}, '.') and regexp_full_match({v}, '[+-]?[0-9]+\\.0+')"
            return f"case when {whole} then regexp_replace({v}, '\\.0+$', '') else {v} end", "null"
        return v, "null"
    if target in ("DOUBLE", "INTEGER"):
        num = f"try_cast({v} as double)"
        if target == "DOUBLE":
            return num, f"case when {v} is not null and {num} is null then 'non-numeric' end"
        value = f"case when {num} = trunc({num}) then try_cast({num} as integer) end"
        return value, f"case when {v} is not null and {value} is null then 'non-integer' end"
    assert target == "TIMESTAMP", target
    if base.startswith("TIMESTAMP WITH TIME ZONE") or base == "TIMESTAMPTZ":
        value = f"try(timezone('UTC', {v}))"
    elif base.startswith("TIMESTAMP") or base == "DATE":
        value = f"try_cast({v} as timestamp)"
    else:
        return _parse_text_timestamp(v, cfg)
    return value, f"case when {v} is not null and {value} is null then 'date out of range' end"


def _parse_text_timestamp(v: str, cfg: SourceConfig) -> tuple[str, str]:
    formats = ([cfg.date_format] if cfg.date_format else []) + list(cfg.date_formats or [])
    if formats:
        tries = [
            f"timezone('UTC', try_strptime({v}, {literal(f)}))"
            if "%z" in f or "%Z" in f
            else f"try_strptime({v}, {literal(f)})"
            for f in formats
        ]
        value = tries[0] if len(tries) == 1 else f"coalesce({', '.join(tries)})"
        return value, f"case when {v} is not null and {value} is null then 'unparseable date' end"

    def group(i: int) -> str:
        return f"regexp_extract({v}, {literal('^' + OFFSET_TS + '$')}, {i})"

    sign = f"case when {group(3)} = '-' then -1 else 1 end"
    hours, minutes = f"try_cast({group(4)} as integer)", f"try_cast({group(5)} as integer)"
    offset = f"{sign} * ({hours} * 60 + coalesce({minutes}, 0))"
    valid = f"({hours} * 60 + coalesce({minutes}, 0) <= {MAX_OFFSET_MINUTES} and coalesce({minutes}, 0) < 60)"
    has_offset = f"{group(1)} <> ''"
    local = f"try_cast({group(1)} as timestamp)"
    value = (
        f"case when regexp_full_match({v}, {literal(NAIVE_TS)}) then try_cast({v} as timestamp) "
        f"when {has_offset} and {group(2)} <> '' then {local} "
        f"when {has_offset} and {valid} then {local} - to_minutes({offset}) end"
    )
    why = (
        f"case when {v} is null or {value} is not null then null "
        f"when {has_offset} and {group(2)} = '' and not {valid} "
        f"then 'time-zone offset out of range' else 'unparseable date' end"
    )
    return value, why


def build_select(
    source: str, cfg: SourceConfig, src_types: dict[str, str], origin: str, today: dt.date
) -> str:
    """SELECT over ``src`` giving canonical columns + ``_reason`` (empty string when valid).

    Three layers: ``_in_<canonical>`` (typed value or trimmed text), then the parsed
    ``<canonical>`` with ``_why_<canonical>`` (the parse rule it breaks) and
    ``_blank_<canonical>``, then the rules.
    """
    inputs, parsed = ["_source_row"], ["_source_row"]
    exprs: dict[str, str] = {}
    reasons: list[str] = []
    latest = literal((today + dt.timedelta(days=1)).isoformat())
    earliest = cfg.earliest_date.isoformat()
    for name, target in CANONICAL[source].items():
        col = cfg.columns.get(name)
        if col is None:
            exprs[name] = f"cast(null as {target})"
            continue
        value, blank, why = ident(name), ident(f"_blank_{name}"), ident(f"_why_{name}")
        inputs.append(f"{_input(col, src_types[col], target)} as {ident(f'_in_{name}')}")
        parse_value, parse_why = _parse(name, src_types[col], target, cfg)
        parsed += [
            f"{parse_value} as {value}",
            f"{parse_why} as {why}",
            f"{ident(f'_in_{name}')} is null as {blank}",
        ]
        exprs[name] = value
        where = f"{name} ({col})"
        if name in REQUIRED[source] or name in ("order_id", "quantity", "unit_price", "amount"):
            reasons.append(f"case when {blank} then {literal(f'missing {where}')} end")
        reasons.append(f"{why} || {literal(' ' + where)}")
        if target == "DOUBLE":
            reasons.append(
                f"case when not isfinite({value}) then {literal(f'non-finite {where}')} end"
            )
        if name in ("quantity", "amount"):
            reasons.append(_out_of_range(value, f"out of range {where}"))
        if target == "TIMESTAMP":
            reasons.append(
                f"case when cast({value} as date) > cast({latest} as date) "
                f"then {literal(f'date in the future {where}')} end"
            )
            reasons.append(
                f"case when {value} < {literal(earliest)}::timestamp "
                f"then {literal(f'date before {earliest} {where}')} end"
            )
    if source == "transactions":
        reasons += _transaction_rules(cfg, exprs)
    select = ", ".join(f"{expr} as {ident(name)}" for name, expr in exprs.items())
    reason = f"concat_ws('; ', {', '.join(reasons)})" if reasons else "''"
    return (
        f"select {select}, {literal(origin)} as _source_file, _source_row, {reason} as _reason "
        f"from (select {', '.join(parsed)} from (select {', '.join(inputs)} from src))"
    )


def _out_of_range(value: str, why: str) -> str:
    return (
        f"case when isfinite({value}) and abs({value}) >= {DECIMAL_LIMIT} then {literal(why)} end"
    )


def _transaction_rules(cfg: SourceConfig, exprs: dict[str, str]) -> list[str]:
    """Derived amount and unit price, order id and cancellation flag; their rules."""
    reasons = []
    cols = cfg.columns
    if "quantity" not in cols:
        exprs["quantity"] = "cast(1.0 as double)"
    qty = exprs["quantity"]
    if "amount" not in cols:
        exprs["amount"] = f"({qty}) * ({exprs['unit_price']})"
        # Finite factors whose product overflows, or leaves the decimal range.
        reasons.append(
            f"case when isfinite({qty}) and isfinite({exprs['unit_price']}) "
            f"and not isfinite({exprs['amount']}) "
            f"then 'non-finite amount (quantity × unit_price)' end"
        )
        reasons.append(
            _out_of_range(exprs["amount"], "out of range amount (quantity × unit_price)")
        )
    elif "unit_price" not in cols:
        exprs["unit_price"] = f"case when ({qty}) <> 0 then ({exprs['amount']}) / ({qty}) end"
    if "unit_price" in cols and not cfg.allow_non_positive_price:
        # A zero price on a return line (negative quantity) is a free item coming back.
        # NaN is left to the non-finite rule; it is tested first because DuckDB folds
        # comparisons on Parquet statistics that leave NaN out (1.0, NaN: NaN < 5 is true).
        price = exprs["unit_price"]
        why = literal(f"non-positive unit_price ({cols['unit_price']})")
        positive = f"({qty} > 0 and not isnan({qty}))"
        reasons.append(
            f"case when not isnan({price}) and ({price} < 0 or ({price} = 0 and {positive})) "
            f"then {why} end"
        )
    if "order_id" not in cols:
        exprs["order_id"] = (
            f"({exprs['customer_id']}) || '-' || strftime(({exprs['ordered_at']}), '%Y%m%d')"
        )
    prefix = cfg.cancellation_prefix
    exprs["is_cancellation"] = (
        f"coalesce(starts_with({exprs['order_id']}, {literal(prefix)}), false)"
        if prefix
        else "false"
    )
    return reasons
