{#
    Order-based facts per customer as of the as-of date: RFM inputs, tenure,
    spend trend, returns, product breadth. One row per customer with at least
    one transaction line before the as-of date (customers with only returns too).
    Money columns are exact type_money() decimals (summed with sum_money, so re-runs
    are bit-identical); customer_features casts them to DOUBLE. The ratios
    (monetary_avg, return_rate) are one DOUBLE division of exact values.

    With the default as-of date (the day after the last transaction) every line is
    before it, so the facts that do not depend on the date are the rows of
    int_customer_order_totals (kept up to date incrementally); with a var as_of_date
    (cut-off builds, backfills) the same macro computes them from the orders before
    the date. Only the spend and purchase-day windows and the day counts depend on
    the date.
#}

-- depends_on: {{ ref('int_customer_order_totals') }}
-- depends_on: {{ ref('int_transactions_as_of') }}

{%- set window_days = var('spend_trend_window_days', 90) | int %}
{#- Fixed lengths: the churn model learns how recent activity decays, whatever the spend window. #}
{%- set purchase_windows = [30, 90, 180, 365] %}

with

orders as (

    select * from {{ ref('int_orders_as_of') }}

),

as_of as (

    select
        as_of_date,
        {{ add_days(-window_days, 'as_of_date') }} as last_window_start,
        {{ add_days(-2 * window_days, 'as_of_date') }} as prev_window_start

    from {{ ref('int_as_of_date') }}

),

order_facts as (

    {% if as_of_date_is_default() -%}
    select
        customer_id,
        first_order_date,
        last_order_date,
        frequency,
        monetary_total,
        gross_sales,
        returned_amount,
        n_returns,
        distinct_products

    from {{ ref('int_customer_order_totals') }}
    {%- else -%}
    {{ customer_order_facts('orders', ref('int_transactions_as_of')) }}
    {%- endif %}

),

spend_windows as (

    select
        orders.customer_id,
        {{ sum_money(
            'case when orders.order_date >= as_of.last_window_start then orders.net_amount else 0 end'
        ) }} as spend_last_window,
        {{ sum_money(
            'case when orders.order_date < as_of.last_window_start then orders.net_amount else 0 end'
        ) }} as spend_prev_window

    from orders
    cross join as_of
    where orders.order_date >= as_of.prev_window_start
    group by orders.customer_id

),

{#
    Distinct purchase (non-return) days in each of the last N days before the as-of date:
    the customer's purchase days in the longest window once, then counted per window (one
    distinct, where a count(distinct ...) per window built four hash sets per customer).
#}
purchase_days as (

    select distinct
        orders.customer_id,
        orders.order_date,
        as_of.as_of_date

    from orders
    cross join as_of
    where not orders.is_return_order
        and orders.order_date >= {{ add_days(-(purchase_windows | max), 'as_of.as_of_date') }}

),

purchase_windows as (

    select
        customer_id,
        {%- for days in purchase_windows %}
        sum(case
            when order_date >= {{ add_days(-days, 'as_of_date') }} then 1 else 0
        end) as purchase_days_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}

    from purchase_days
    group by customer_id

),

final as (

    select
        order_facts.customer_id,
        as_of.as_of_date,
        order_facts.first_order_date,
        order_facts.last_order_date,

        {{ dbt.safe_cast(dbt.datediff('order_facts.last_order_date', 'as_of.as_of_date', 'day'), dbt.type_int()) }}
            as recency_days,
        {{ dbt.safe_cast('order_facts.frequency', dbt.type_bigint()) }} as frequency,
        order_facts.monetary_total,
        {{ dbt.safe_cast(
            'case when order_facts.frequency > 0 then '
            ~ dbt.safe_cast('order_facts.gross_sales', type_double())
            ~ ' / order_facts.frequency else 0 end',
            type_double()
        ) }} as monetary_avg,
        {{ dbt.safe_cast(dbt.datediff('order_facts.first_order_date', 'as_of.as_of_date', 'day'), dbt.type_int()) }}
            as tenure_days,

        {{ dbt.safe_cast('coalesce(spend_windows.spend_last_window, 0)', type_money()) }} as spend_last_90d,
        {{ dbt.safe_cast('coalesce(spend_windows.spend_prev_window, 0)', type_money()) }} as spend_prev_90d,
        {{ dbt.safe_cast(
            'coalesce(spend_windows.spend_last_window, 0) - coalesce(spend_windows.spend_prev_window, 0)',
            type_money()
        ) }} as spend_trend_90d,
        {%- for days in purchase_windows %}
        {{ dbt.safe_cast('coalesce(purchase_windows.purchase_days_' ~ days ~ 'd, 0)', dbt.type_bigint()) }}
            as purchase_days_{{ days }}d,
        {%- endfor %}

        order_facts.gross_sales,
        order_facts.returned_amount,
        {{ dbt.safe_cast(
            'case when order_facts.gross_sales > 0 then '
            ~ dbt.safe_cast('order_facts.returned_amount', type_double())
            ~ ' / ' ~ dbt.safe_cast('order_facts.gross_sales', type_double()) ~ ' else 0 end',
            type_double()
        ) }} as return_rate,
        {{ dbt.safe_cast('order_facts.n_returns', dbt.type_bigint()) }} as n_returns,
        order_facts.distinct_products

    from order_facts
    cross join as_of
    left join spend_windows
        on order_facts.customer_id = spend_windows.customer_id
    left join purchase_windows
        on order_facts.customer_id = purchase_windows.customer_id

)

select * from final
