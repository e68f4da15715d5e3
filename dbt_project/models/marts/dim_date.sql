{#
    One row per calendar day, contiguous from the first order date to the last
    order date, widened to include the as-of date and every snapshot date kept in
    fct_customer_snapshot. The snapshot dates matter when a later delivery ends
    before an older snapshot (a re-delivery of fewer days): the history stays, and
    its dates stay in the calendar, so every snapshot row still relates to dim_date.
#}

{%- set date_range = ref('int_date_range') %}
{%- set snapshots = ref('fct_customer_snapshot') %}
{#- A snapshot date outside the orders' range widens it; none (first run): as it is. -#}
{%- set first_day -%}
    (select case when s.first_snapshot < r.start_date then s.first_snapshot else r.start_date end
     from {{ date_range }} as r
     cross join (select min(snapshot_date) as first_snapshot from {{ snapshots }}) as s)
{%- endset %}
{#- date_spine's end date is exclusive, hence + 1 day. -#}
{%- set day_after_last -%}
    (select {{ add_days(1, 'case when s.last_snapshot > r.end_date then s.last_snapshot '
                           ~ 'else r.end_date end') }}
     from {{ date_range }} as r
     cross join (select max(snapshot_date) as last_snapshot from {{ snapshots }}) as s)
{%- endset %}

with

spine as (

    {{ dbt.date_spine('day', first_day, day_after_last) }}

),

days as (

    select cast(date_day as date) as date_day
    from spine

),

parts as (

    select
        date_day,
        {{ dbt.safe_cast('extract(year from date_day)', dbt.type_int()) }} as year_number,
        {{ dbt.safe_cast('extract(quarter from date_day)', dbt.type_int()) }} as quarter_number,
        {{ dbt.safe_cast('extract(month from date_day)', dbt.type_int()) }} as month_number,
        {{ dbt.safe_cast(iso_week_of_year('date_day'), dbt.type_int()) }} as iso_week,
        {{ dbt.safe_cast('extract(day from date_day)', dbt.type_int()) }} as day_number,
        {{ dbt.safe_cast(iso_day_of_week('date_day'), dbt.type_int()) }} as iso_day_of_week

    from days

),

final as (

    select
        {{ date_key('date_day') }} as date_key,
        date_day as date,
        year_number as year,
        quarter_number as quarter,
        month_number as month,
        case month_number
            when 1 then 'January' when 2 then 'February' when 3 then 'March'
            when 4 then 'April' when 5 then 'May' when 6 then 'June'
            when 7 then 'July' when 8 then 'August' when 9 then 'September'
            when 10 then 'October' when 11 then 'November' when 12 then 'December'
        end as month_name,
        iso_week as week_of_year,
        day_number as day_of_month,
        iso_day_of_week as day_of_week,
        case iso_day_of_week
            when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday'
            when 4 then 'Thursday' when 5 then 'Friday' when 6 then 'Saturday'
            when 7 then 'Sunday'
        end as day_name,
        iso_day_of_week in (6, 7) as is_weekend

    from parts

)

select * from final
