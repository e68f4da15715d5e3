{#
    One row per customer from the optional customer attributes. When a customer
    appears more than once, the last delivered row wins (latest source file, then
    highest source row); the remaining columns only break exact ties so the
    choice never depends on scan order.
#}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

ranked as (

    select
        customers.*,
        row_number() over (
            partition by customer_id
            order by
                source_file desc nulls last,
                source_row desc nulls last,
                signup_at desc nulls last,
                birth_year desc nulls last,
                age desc nulls last,
                gender desc nulls last,
                region desc nulls last
        ) as row_rank

    from customers

),

final as (

    select
        customer_id,
        gender,
        region,
        birth_year,
        age,
        signup_at,
        signup_date

    from ranked
    where row_rank = 1

)

select * from final
