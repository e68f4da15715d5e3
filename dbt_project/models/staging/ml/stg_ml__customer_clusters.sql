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
        {{ dbt.safe_cast('cluster_label', dbt.type_string()) }} as cluster_label

    from source

)

select * from renamed
