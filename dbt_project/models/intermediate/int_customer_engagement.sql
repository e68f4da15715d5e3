{#
    Engagement per customer from the optional events, before the as-of date.
    One row per customer with at least one such event. events_90d and
    event_types count the last `engagement_window_days` (default 90) days.
#}

{%- set window_days = var('engagement_window_days', 90) | int %}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select
        as_of_date,
        {{ add_days(-window_days, 'as_of_date') }} as window_start

    from {{ ref('int_as_of_date') }}

),

per_type as (

    -- One row per customer and event type first: counting the types in the window is
    -- then a plain count, where count(distinct ...) per customer hashes every event.
    select
        events.customer_id,
        as_of.as_of_date,
        events.event_type,
        count(case when events.event_date >= as_of.window_start then 1 end) as events_in_window,
        max(events.event_date) as last_event_date

    from events
    cross join as_of
    where events.event_date < as_of.as_of_date
    group by events.customer_id, as_of.as_of_date, events.event_type

),

per_customer as (

    select
        customer_id,
        as_of_date,
        sum(events_in_window) as events_in_window,
        count(case when events_in_window > 0 and event_type is not null then 1 end)
            as event_types_in_window,
        max(last_event_date) as last_event_date

    from per_type
    group by customer_id, as_of_date

),

final as (

    select
        customer_id,
        {{ dbt.safe_cast('events_in_window', dbt.type_bigint()) }} as events_90d,
        {{ dbt.safe_cast('event_types_in_window', dbt.type_bigint()) }} as event_types,
        last_event_date,
        {{ dbt.safe_cast(dbt.datediff('last_event_date', 'as_of_date', 'day'), dbt.type_int()) }}
            as days_since_last_event

    from per_customer

)

select * from final
