with

source as (

    select * from {{ source('raw', 'transactions') }}

),

renamed as (

    select
        ----------  ids
        {{ dbt.safe_cast('customer_id', dbt.type_string()) }} as customer_id,
        {{ dbt.safe_cast('order_id', dbt.type_string()) }} as order_id,
        {{ dbt.safe_cast('product_id', dbt.type_string()) }} as product_id,

        ----------  dimensions
        {{ dbt.safe_cast('category', dbt.type_string()) }} as category,
        {{ dbt.safe_cast('country', dbt.type_string()) }} as country,
        {{ dbt.safe_cast('channel', dbt.type_string()) }} as channel,

        ----------  numerics
        {# Exact decimals from here on, so that sums do not depend on thread scheduling (macros/cross_db.sql). #}
        {{ dbt.safe_cast('quantity', type_quantity()) }} as quantity,
        {# Never summed: kept as given. #}
        {{ dbt.safe_cast('unit_price', type_double()) }} as unit_price,
        {{ dbt.safe_cast('amount', type_money()) }} as amount,

        ----------  booleans
        {{ dbt.safe_cast('is_cancellation', dbt.type_boolean()) }} as is_cancellation,
        (quantity < 0 or amount < 0 or is_cancellation) as is_return,

        ----------  timestamps
        {{ dbt.safe_cast('ordered_at', dbt.type_timestamp()) }} as ordered_at,
        cast(ordered_at as date) as order_date,

        ----------  lineage
        {{ dbt.safe_cast('_source_file', dbt.type_string()) }} as source_file,
        {{ dbt.safe_cast('_source_row', dbt.type_bigint()) }} as source_row

    from source

)

select * from renamed
