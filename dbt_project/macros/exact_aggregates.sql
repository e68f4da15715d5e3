{#
    Aggregates whose result does not depend on the order of the rows.

    Engines aggregate in parallel (DuckDB splits a GROUP BY between threads and
    merges the partial states), and floating-point addition is not associative,
    so SUM / AVG / STDDEV over DOUBLE values can change in the last bits from one
    run to the next. These macros only add exact values (decimals, integers) and
    leave a single final division / square root to floating point, which is a
    pure function of its exact inputs.
#}

{# SUM of a money expression (type_money()), exact, cast back to type_money(). #}
{% macro sum_money(expr) -%}
    {{ dbt.safe_cast('sum(' ~ expr ~ ')', type_money()) }}
{%- endmacro %}


{# SUM of a quantity expression (type_quantity()), exact, cast back to type_quantity(). #}
{% macro sum_quantity(expr) -%}
    {{ dbt.safe_cast('sum(' ~ expr ~ ')', type_quantity()) }}
{%- endmacro %}


{#
    Mean of an exact (DECIMAL or integer) expression as a DOUBLE: exact sum, then
    one division. NULLs are ignored, as by AVG; NULL when there is no value.
#}
{% macro exact_avg(expr) -%}
    case when count({{ expr }}) > 0 then
        {{ dbt.safe_cast('sum(' ~ expr ~ ')', type_double()) }} / count({{ expr }})
    end
{%- endmacro %}


{#
    Sample standard deviation (like STDDEV_SAMP) of an integer-valued expression
    (e.g. days), as a DOUBLE; NULL with fewer than 2 values. STDDEV_SAMP itself
    runs Welford's update in DOUBLE and merges per-thread states, so its last bits
    depend on scheduling. Here the textbook formula
        var = (n * sum(x^2) - sum(x)^2) / (n * (n - 1))
    is evaluated with exact integer sums (no cancellation error either: the
    numerator is an exact integer), leaving one division and one sqrt to DOUBLE.
    Integers only: x^2 of a DECIMAL would need the sums in a wider decimal.
#}
{% macro exact_stddev_samp_int(expr) -%}
    {%- set x = dbt.safe_cast(expr, dbt.type_bigint()) -%}
    case when count({{ x }}) > 1 then
        sqrt(
            {{ dbt.safe_cast(
                'count(' ~ x ~ ') * sum(' ~ x ~ ' * ' ~ x ~ ') - sum(' ~ x ~ ') * sum(' ~ x ~ ')',
                type_double()
            ) }}
            / (count({{ x }}) * (count({{ x }}) - 1))
        )
    end
{%- endmacro %}
