"""The dbt SQL stays portable: no DuckDB-only construct outside adapter-dispatched macros.

The same project runs on DuckDB and on Spark (tests/test_spark.py, docs/scaling.md).
That only holds while models, tests and shared macros use standard SQL, dbt's
cross-database macros (dbt.datediff, dbt.safe_cast, dbt.type_string ...) or our own
dispatched ones (macros/cross_db.sql). Engine-specific SQL belongs in the body of
an implementation macro (``duckdb__x``, ``spark__x``, ``default__x``: any macro
whose name has ``__``), which this check skips. Jinja and SQL comments are skipped
too, so a comment may name what it avoids.

The Spark test catches a breaking construct as well, but needs Java and a minute;
this check is instant and names the line and the portable replacement.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.dbt._dbt_helpers import PROJECT_DIR

SQL_DIRS = ("models", "macros", "tests")
FUNC = r"(?<![\w.])(?:{})\s*\("  # a bare call: `dbt.datediff(` and `my_datediff(` do not match

# (rule, pattern, what to use instead); matched case-insensitively.
RULES: list[tuple[str, str, str]] = [
    ("double-colon cast", r"::", "cast(x as t) / dbt.safe_cast(x, dbt.type_*())"),
    (
        "date function",
        FUNC.format(
            r"date_diff|datediff|date_add|date_sub|date_part|datepart|date_trunc|datetrunc"
        ),
        "dbt.datediff / dbt.dateadd / dbt.date_trunc / extract(part from x) / add_days()",
    ),
    (
        "time conversion",
        FUNC.format(
            r"epoch|epoch_ms|epoch_us|to_timestamp|make_date|make_timestamp|strftime|strptime"
            r"|today|now|get_current_timestamp"
        ),
        "date_literal() / dbt.current_timestamp() / dbt.cast(x, dbt.type_timestamp())",
    ),
    (
        "nested type",
        FUNC.format(r"list|list_\w+|array_\w+|struct_\w+|map_\w+|unnest|string_split|str_split"),
        "flat columns (Power BI-safe types); dbt.array_* if an array is unavoidable",
    ),
    ("QUALIFY", r"\bqualify\b", "a CTE with the window column, then WHERE"),
    ("FILTER clause", r"\bfilter\s*\(\s*where\b", "sum(case when ... then x end)"),
    (
        "ordered-set aggregate",
        FUNC.format(
            r"median|quantile|quantile_cont|quantile_disc|approx_quantile|percentile_cont"
            r"|percentile_disc|mode|arg_max|arg_min|argmax|argmin|max_by|min_by"
        ),
        "a dispatched macro (e.g. percentile_cont on DuckDB, percentile on Spark)",
    ),
    (
        "non-portable aggregate",
        FUNC.format(r"bool_or|bool_and|any_value|string_agg|listagg|group_concat|count_if|countif"),
        "dbt.bool_or / dbt.any_value / dbt.listagg / sum(case when ... then 1 else 0 end)",
    ),
    ("hash", FUNC.format(r"hash|md5_number"), "dbt.hash / surrogate_key()"),
    (
        "regular expression",
        FUNC.format(r"regexp_\w+"),
        "a dispatched macro: regex functions and dialects differ between engines",
    ),
    ("log()", FUNC.format(r"log"), "ln(x) or log10(x): log(x) is base 10 on DuckDB, e on Spark"),
    ("integer division", r"\s//\s", "floor(a / b) (`//` is a comment or an error elsewhere)"),
    (
        "DuckDB star/ALL syntax",
        r"\b(?:group|order)\s+by\s+all\b|\*\s*(?:exclude|replace)\s*\(|(?<![\w.])columns\s*\(",
        "list the columns",
    ),
    (
        "DuckDB file reader",
        FUNC.format(r"read_parquet|read_csv|read_csv_auto|read_json|read_json_auto|parquet_scan"),
        "a source (raw.*) filled by the ingest",
    ),
    (
        "engine-specific type",
        r"\b(?:varchar|hugeint|uhugeint|ubigint|uinteger|usmallint|utinyint|uuid|blob|interval)\b",
        "dbt.type_string() / type_int() / type_bigint() / type_double(); dbt.dateadd for intervals",
    ),
    ("TRY_CAST", FUNC.format(r"try_cast"), "dbt.safe_cast"),
]
# In the SQL outside Jinja: "x" is an identifier on DuckDB but a string literal on Spark.
DOUBLE_QUOTE = (
    "double-quoted identifier",
    "plain lower-case names (adapter.quote() if unavoidable)",
)

COMMENTS = re.compile(r"\{#.*?#\}|/\*.*?\*/|--[^\n]*", re.DOTALL)
MACRO = re.compile(
    r"\{%-?\s*macro\s+(\w+)\s*\(.*?\{%-?\s*endmacro\s*-?%\}", re.DOTALL | re.IGNORECASE
)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
# Keys of property YAML whose values are SQL (test arguments, configs).
YAML_SQL_KEYS = {"column_name", "where", "expression", "sql", "condition"}


def _blank(match: re.Match) -> str:
    """Replace a match by spaces, keeping its newlines, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group())


def _portable_part(text: str) -> str:
    """The text without comments and without the bodies of implementation macros (`a__b`)."""
    text = COMMENTS.sub(_blank, text)
    return MACRO.sub(lambda m: _blank(m) if "__" in m.group(1) else m.group(), text)


def violations(text: str) -> list[tuple[int, str, str]]:
    """(line, rule, replacement) for every non-portable construct in a dbt SQL file."""
    text = _portable_part(text)
    found = []
    for rule, pattern, instead in RULES:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            found.append((text.count("\n", 0, match.start()) + 1, rule, instead))
    sql_only = JINJA.sub(_blank, text)
    for match in re.finditer('"', sql_only):
        found.append((sql_only.count("\n", 0, match.start()) + 1, *DOUBLE_QUOTE))
    return sorted(set(found))


def _yaml_sql(node: object) -> list[str]:
    """SQL snippets in a property YAML file (values of YAML_SQL_KEYS, at any depth)."""
    if isinstance(node, dict):
        out = [v for k, v in node.items() if k in YAML_SQL_KEYS and isinstance(v, str)]
        return out + [s for v in node.values() for s in _yaml_sql(v)]
    if isinstance(node, list):
        return [s for v in node for s in _yaml_sql(v)]
    return []


def _files(pattern: str) -> list[Path]:
    return sorted(p for d in SQL_DIRS for p in (PROJECT_DIR / d).rglob(pattern))


def test_dbt_sql_has_no_duckdb_only_constructs() -> None:
    files = _files("*.sql")
    assert len(files) > 30
    problems = [
        f"{path.relative_to(PROJECT_DIR)}:{line}: {rule} (use {instead})"
        for path in files
        for line, rule, instead in violations(path.read_text())
    ]
    assert not problems, "DuckDB-only SQL outside a dispatched macro:\n" + "\n".join(problems)


def test_sql_in_property_yaml_is_portable() -> None:
    problems = [
        f"{path.relative_to(PROJECT_DIR)}: {snippet!r}: {rule} (use {instead})"
        for path in _files("*.yml")
        for snippet in _yaml_sql(yaml.safe_load(path.read_text()))
        for _, rule, instead in violations(snippet)
    ]
    assert not problems, "\n".join(problems)


def test_seed_column_types_are_portable() -> None:
    """Seed types are written into CREATE TABLE as they are: Spark has no bare VARCHAR."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    seeds = project["seeds"]["custseg"]
    types = {
        f"{seed}.{column}": typ
        for seed, config in seeds.items()
        if isinstance(config, dict)
        for column, typ in (config.get("+column_types") or {}).items()
    }
    assert types
    portable = {"integer", "bigint", "double", "boolean", "string", "date", "timestamp"}
    assert {k: t for k, t in types.items() if t.lower() not in portable} == {}


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("select amount::double from t", "double-colon cast"),
        ("select date_diff('day', a, b) from t", "date function"),
        ("select DATEDIFF(b, a) from t", "date function"),
        ("select epoch(ordered_at) from t", "time conversion"),
        ("select list(x) from t", "nested type"),
        ("select struct_pack(a := 1)", "nested type"),
        ("select * from t qualify row_number() over (order by a) = 1", "QUALIFY"),
        ("select count(*) filter (where a) from t", "FILTER clause"),
        ("select median(x) from t", "ordered-set aggregate"),
        ("select quantile_cont(x, 0.5) from t", "ordered-set aggregate"),
        ("select bool_or(x) from t", "non-portable aggregate"),
        ("select hash(x) from t", "hash"),
        ("select regexp_matches(x, 'a') from t", "regular expression"),
        ("select log(x) from t", "log()"),
        ("select a // b from t", "integer division"),
        ("select * from t group by all", "DuckDB star/ALL syntax"),
        ("select * exclude (a) from t", "DuckDB star/ALL syntax"),
        ("select * from read_parquet('x.parquet')", "DuckDB file reader"),
        ("select cast(x as varchar) from t", "engine-specific type"),
        ("select d + interval 1 day from t", "engine-specific type"),
        ("select try_cast(x as int) from t", "TRY_CAST"),
        ('select "Amount" from t', "double-quoted identifier"),
        ("{{ dbt.safe_cast('x::int', dbt.type_int()) }}", "double-colon cast"),
        ("{% macro helper() %}select median(x){% endmacro %}", "ordered-set aggregate"),
    ],
)
def test_check_finds_duckdb_only_sql(sql: str, rule: str) -> None:
    assert rule in {r for _, r, _ in violations(sql)}


@pytest.mark.parametrize(
    "sql",
    [
        "select {{ dbt.datediff('a', 'b', 'day') }}, {{ dbt.bool_or('x') }} from t",
        "select {{ dbt.safe_cast('x', dbt.type_string()) }} from t",
        "{# median(x) and x::int in a comment #} select 1 -- qualify, too",
        "{% macro duckdb__p50(x) %}median({{ x }}){% endmacro %}",
        "{% macro spark__p50(x) %}percentile({{ x }}, 0.5){% endmacro %}",
        "select ln(x), log10(x), a / b, extract(year from d) from t",
        "{{ dbt.concat([\"'a'\", 'b']) }}",
    ],
)
def test_check_accepts_portable_sql(sql: str) -> None:
    assert violations(sql) == []
