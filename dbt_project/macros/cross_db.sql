{#
    Small cross-database helpers for what dbt's own cross-database macros do
    not cover. Each dispatches, so another adapter (e.g. Spark) can override it
    with `spark__<name>` without touching the models.
#}

{# 64-bit float. dbt.type_float() renders `float`, which is 32-bit REAL on DuckDB and Spark. #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'custseg')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}


{#
    Exact type for money (line amounts and their sums). DECIMAL, not DOUBLE: a sum
    of decimals is exact, so it does not depend on the order in which the engine's
    threads add the rows, and re-runs on the same input give identical results.
    18 digits with 4 decimals: input amounts have at most 4 decimals in practice
    (casting rounds to 4), totals up to +-99,999,999,999,999.9999, and 18 digits is
    the widest decimal that still fits in 64 bits and that Power BI reads as-is.
    SUM of a DECIMAL(18, s) widens it (DuckDB: DECIMAL(38, s), Spark: DECIMAL(28, s)),
    hence the sum_money() macro, which casts the sum back.
#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'custseg')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    decimal(18, 4)
{%- endmacro %}

{% macro bigquery__type_money() -%}
    numeric
{%- endmacro %}


{# Exact type for item quantities, summed like money (quantities may be fractional, e.g. kg). #}
{#
    A probability (0..1) as an exact decimal, so means over many customers are
    exact sums (macros/exact_aggregates.sql) and re-runs give identical bits.
#}
{% macro type_probability() -%}
    {{ return(adapter.dispatch('type_probability', 'custseg')()) }}
{%- endmacro %}

{% macro default__type_probability() -%}
    decimal(18, 10)
{%- endmacro %}

{% macro bigquery__type_probability() -%}
    bignumeric
{%- endmacro %}


{% macro type_quantity() -%}
    {{ return(adapter.dispatch('type_quantity', 'custseg')()) }}
{%- endmacro %}

{% macro default__type_quantity() -%}
    decimal(18, 4)
{%- endmacro %}

{% macro bigquery__type_quantity() -%}
    numeric
{%- endmacro %}


{# DATE literal from a 'YYYY-MM-DD' string (or date) known at compile time, e.g. a var. #}
{% macro date_literal(iso_date) -%}
    {%- set text = iso_date | string | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {{ exceptions.raise_compiler_error(
            "Expected a date as 'YYYY-MM-DD', got '" ~ text ~ "' (dbt var as_of_date?)"
        ) }}
    {%- endif -%}
    {%- set parsed = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {{ return(dbt.date(parsed.year, parsed.month, parsed.day)) }}
{%- endmacro %}


{# ISO 8601 week number (1..53). #}
{% macro iso_week_of_year(date_expr) -%}
    {{ return(adapter.dispatch('iso_week_of_year', 'custseg')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_week_of_year(date_expr) -%}
    extract(week from {{ date_expr }})
{%- endmacro %}

{% macro spark__iso_week_of_year(date_expr) -%}
    weekofyear({{ date_expr }})
{%- endmacro %}


{# ISO 8601 day of week: 1 = Monday .. 7 = Sunday. #}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'custseg')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    extract(isodow from {{ date_expr }})
{%- endmacro %}

{% macro spark__iso_day_of_week(date_expr) -%}
    extract(dayofweek_iso from {{ date_expr }})
{%- endmacro %}


{# Integer yyyymmdd key for a DATE, as used by dim_date.date_key. #}
{% macro date_key(date_expr) -%}
    {{ dbt.safe_cast(
        'extract(year from ' ~ date_expr ~ ') * 10000'
        ~ ' + extract(month from ' ~ date_expr ~ ') * 100'
        ~ ' + extract(day from ' ~ date_expr ~ ')',
        dbt.type_int()
    ) }}
{%- endmacro %}


{# A DATE `days` days after (negative: before) a DATE expression, as a DATE. #}
{% macro add_days(days, date_expr) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}
