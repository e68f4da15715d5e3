{#
    The columns of an evidence table (ml.evaluation.EVIDENCE_COLUMNS + run_id,
    evaluated_at) with warehouse types. Both refit assets write one
    (ml.segmentation_evidence, ml.value_evidence) with the same columns, so both
    staging models share this list and union cleanly in mart_model_evaluation.
#}
{% macro evidence_columns() -%}
        ----------  ids
        {{ dbt.safe_cast('model_family', dbt.type_string()) }} as model_family,
        {{ dbt.safe_cast('candidate', dbt.type_string()) }} as candidate,
        {{ dbt.safe_cast('metric', dbt.type_string()) }} as metric,

        ----------  dimensions
        {{ dbt.safe_cast('role', dbt.type_string()) }} as role,
        {{ dbt.safe_cast('higher_is_better', dbt.type_boolean()) }} as higher_is_better,
        {{ dbt.safe_cast('note', dbt.type_string()) }} as note,

        ----------  numerics
        {{ dbt.safe_cast('value', type_double()) }} as value,
        {{ dbt.safe_cast('horizon_days', dbt.type_int()) }} as horizon_days,
        {{ dbt.safe_cast('customers', dbt.type_bigint()) }} as customers,

        ----------  timestamps and lineage
        cast(cutoff_date as date) as cutoff_date,
        {{ dbt.safe_cast('run_id', dbt.type_string()) }} as run_id,
        {{ dbt.safe_cast('evaluated_at', dbt.type_timestamp()) }} as evaluated_at
{%- endmacro %}
