{#
    None of the given columns holds a null. One scan for all of them, where a not_null
    test per column costs one dbt node (and one Dagster asset check) each: ~170 of them
    made dbt's per-node overhead a large share of an incremental run. A failure returns
    one row per column with nulls (column_name, null_rows); the failure count is the
    number of null values, as the per-column tests counted.
#}
{% test not_null_columns(model, columns) %}

{{ config(fail_calc='coalesce(sum(null_rows), 0)') }}

with

counts as (

    select
        {%- for column in columns %}
        sum(case when {{ adapter.quote(column) }} is null then 1 else 0 end) as null_rows_{{ loop.index }}
        {{- "," if not loop.last }}
        {%- endfor %}

    from {{ model }}

)

{% for column in columns -%}
select '{{ column | replace("'", "''") }}' as column_name, null_rows_{{ loop.index }} as null_rows
from counts
where null_rows_{{ loop.index }} > 0
{% if not loop.last %}union all
{% endif %}
{%- endfor %}

{% endtest %}
