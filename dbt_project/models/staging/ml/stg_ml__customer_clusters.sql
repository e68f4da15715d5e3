with

source as (

    select * from {{ source('ml', 'customer_clusters') }}

),

renamed as (

    select
        ----------  ids
        {{ dbt.safe_cast('customer_id', dbt.type_string()) }} as customer_id,
        {{ dbt.safe_cast('cluster_id', dbt.type_int()) }} as cluster_id,

        ----------  dimensions
        {{ dbt.safe_cast('cluster_label', dbt.type_string()) }} as segment_name,
        {{ dbt.safe_cast('is_noise', dbt.type_boolean()) }} as cluster_is_noise,

        ----------  lineage
        {{ dbt.safe_cast('model_version', dbt.type_string()) }} as segmentation_model_version,
        {{ dbt.safe_cast('scored_at', dbt.type_timestamp()) }} as segmented_at

    from source

)

select * from renamed
