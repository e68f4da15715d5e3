{#
    Use custom schemas as-is (staging, intermediate, features, marts, seeds)
    instead of dbt's default `<target_schema>_<custom_schema>`: the Python
    stages and the Power BI export read these schema names (docs/data_contract.md).

    Cut-off builds (orchestration/cutoffs.py): with the var `cutoff_schema_suffix`
    set (e.g. '_cutoff_train'), the models tagged `as_of` go to `<schema><suffix>`
    (e.g. `features_cutoff_train`), so the same models can be built as of an
    earlier date beside the production tables. The tag marks everything downstream
    of int_as_of_date before the ML step (tests/dbt/test_cutoffs.py checks that it
    is complete). Every other model keeps its production schema, so the refs of the
    as-of models to int_transactions_deduped, staging and seeds read production.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set base = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- set suffix = var('cutoff_schema_suffix', none) -%}
    {%- set suffix = '' if suffix is none else suffix | string | trim -%}
    {%- if suffix != '' and not modules.re.match('^_[a-z0-9_]+$', suffix) -%}
        {{ exceptions.raise_compiler_error(
            "var cutoff_schema_suffix must start with '_' and contain only a-z, 0-9 and '_'"
            ~ " (it is appended to schema names), got '" ~ suffix ~ "'"
        ) }}
    {%- endif -%}
    {%- if suffix != '' and node is not none and 'as_of' in node.tags -%}
        {{ base ~ suffix }}
    {%- else -%}
        {{ base }}
    {%- endif -%}
{%- endmacro %}
