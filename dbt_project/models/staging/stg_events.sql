with

source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        ----------  ids
        {{ dbt.safe_cast('customer_id', dbt.type_string()) }} as customer_id,

        ----------  dimensions
        {{ dbt.safe_cast('event_type', dbt.type_string()) }} as event_type,

        ----------  timestamps
        {{ dbt.safe_cast('event_at', dbt.type_timestamp()) }} as event_at,
        cast(event_at as date) as event_date,

        ----------  lineage
        {{ dbt.safe_cast('_source_file', dbt.type_string()) }} as source_file,
        {{ dbt.safe_cast('_source_row', dbt.type_bigint()) }} as source_row

    from source

)

select * from renamed
