with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        ----------  ids
        {{ dbt.safe_cast('customer_id', dbt.type_string()) }} as customer_id,

        ----------  dimensions
        {{ dbt.safe_cast('gender', dbt.type_string()) }} as gender,
        {{ dbt.safe_cast('region', dbt.type_string()) }} as region,

        ----------  numerics
        {{ dbt.safe_cast('birth_year', dbt.type_int()) }} as birth_year,
        {{ dbt.safe_cast('age', dbt.type_int()) }} as age,

        ----------  timestamps
        {{ dbt.safe_cast('signup_at', dbt.type_timestamp()) }} as signup_at,
        cast(signup_at as date) as signup_date,

        ----------  lineage
        {{ dbt.safe_cast('_source_file', dbt.type_string()) }} as source_file,
        {{ dbt.safe_cast('_source_row', dbt.type_bigint()) }} as source_row

    from source

)

select * from renamed
