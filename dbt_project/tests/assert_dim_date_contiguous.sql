{{ config(tags=['post_ml']) }}

{# dim_date has no gaps: returns the days whose previous day is missing (except the first). #}

with

days as (

    select
        date,
        lag(date) over (order by date) as previous_date

    from {{ ref('dim_date') }}

)

select *
from days
where previous_date is not null
    and {{ dbt.datediff('previous_date', 'date', 'day') }} <> 1
