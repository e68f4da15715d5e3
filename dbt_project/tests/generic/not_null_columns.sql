{#
    None of the given columns holds a null. One scan for all of them, where a not_null
    test per column costs one dbt node (and one Dagster asset check) each: ~170 of them
    made dbt's per-node overhead a large share of an incremental run. A failure returns
    one row per column with nulls: column_name and null_rows.
#}
{% test not_null_columns(model, columns) %}

with

counts as (

    select
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as null_rows_{{ loop.index }}
        {{- "," if not loop.last }}
        {%- endfor %}

    from {{ model }}

)

{% for column in columns -%}
select '{{ column }}' as column_name, null_rows_{{ loop.index }} as null_rows
from counts
where null_rows_{{ loop.index }} > 0
{% if not loop.last %}union all
{% endif %}
{%- endfor %}

{% endtest %}
