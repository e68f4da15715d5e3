{#
    ml.segmentation_evidence (written by the refit asset `segmentation_model`): how
    far to trust each model, one row per (model_family, candidate, metric), typed.
#}

with

source as (

    select * from {{ source('ml', 'segmentation_evidence') }}

),

renamed as (

    select
        {{ evidence_columns() }}

    from source

)

select * from renamed
