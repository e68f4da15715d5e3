{#
    Use custom schemas as-is (staging, intermediate, features, marts, seeds)
    instead of dbt's default `<target_schema>_<custom_schema>`: the Python
    stages and the Power BI export read these schema names (docs/data_contract.md).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
