{#
    ml.value_evidence (written by the refit asset `value_models`): how
    far to trust each model, one row per (model_family, candidate, metric), typed.
#}

with

source as (

    select * from {{ source('ml', 'value_evidence') }}

),

renamed as (

    select
        {{ evidence_columns() }}

    from source

)

select * from renamed
