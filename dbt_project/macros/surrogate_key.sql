{#
    Deterministic text key over a list of columns (NULL-safe, separator-safe),
    in the spirit of dbt_utils.generate_surrogate_key, without the package.
#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append(
            "coalesce(" ~ dbt.safe_cast(column, dbt.type_string()) ~ ", '_null_')"
        ) -%}
        {%- if not loop.last -%}{%- do parts.append("'|'") -%}{%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
