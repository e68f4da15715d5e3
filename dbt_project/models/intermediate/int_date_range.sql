{#
    One row: the first and last calendar day dim_date must cover, i.e. all order
    dates, the as-of date and the default as-of date (the day after the last
    transaction), so snapshots taken at the default date stay covered when a later
    run uses an earlier as_of_date (backfill). Falls back to today when there are no transactions.
#}

with

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

bounded as (

    select
        coalesce(
            case
                when as_of_date < first_transaction_date then as_of_date
                else first_transaction_date
            end,
            as_of_date,
            first_transaction_date,
            cast({{ dbt.current_timestamp() }} as date)
        ) as start_date,
        coalesce(
            case
                when as_of_date > {{ add_days(1, 'last_transaction_date') }} then as_of_date
                else {{ add_days(1, 'last_transaction_date') }}
            end,
            as_of_date,
            {{ add_days(1, 'last_transaction_date') }},
            cast({{ dbt.current_timestamp() }} as date)
        ) as end_date

    from as_of

)

select * from bounded
