{#
    One row per customer with at least one transaction line before the as-of
    date (customers with only returns included), as of that date. Read by the
    Python ML step; column meanings in _features__models.yml.
    Money is carried as exact decimals up to here and cast to DOUBLE only in this
    output (the ML step wants floats), so re-runs on the same input are bit-identical.
#}

with

order_summary as (

    select * from {{ ref('int_customer_order_summary') }}

),

rfm as (

    select * from {{ ref('int_customer_rfm_segments') }}

),

lifetimes as (

    select * from {{ ref('int_customer_lifetimes') }}

),

engagement as (

    select * from {{ ref('int_customer_engagement') }}

),

demographics as (

    select * from {{ ref('int_customers_deduped') }}

),

final as (

    select
        ----------  ids
        order_summary.customer_id,
        order_summary.as_of_date,

        ----------  RFM
        order_summary.first_order_date,
        order_summary.last_order_date,
        order_summary.recency_days,
        order_summary.frequency,
        {{ dbt.safe_cast('order_summary.monetary_total', type_double()) }} as monetary_total,
        order_summary.monetary_avg,
        order_summary.tenure_days,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.fm_score,
        rfm.rfm_segment,

        ----------  lifetimes (null for returns-only customers)
        lifetimes.lt_frequency,
        lifetimes.lt_recency_days,
        lifetimes.lt_t_days,
        lifetimes.lt_monetary_value,

        ----------  purchase timing and trend
        lifetimes.inter_purchase_days_mean,
        lifetimes.inter_purchase_days_std,
        {{ dbt.safe_cast('order_summary.spend_last_90d', type_double()) }} as spend_last_90d,
        {{ dbt.safe_cast('order_summary.spend_prev_90d', type_double()) }} as spend_prev_90d,
        {{ dbt.safe_cast('order_summary.spend_trend_90d', type_double()) }} as spend_trend_90d,
        order_summary.purchase_days_30d,
        order_summary.purchase_days_90d,
        order_summary.purchase_days_180d,
        order_summary.purchase_days_365d,

        ----------  breadth and returns
        order_summary.distinct_products,
        {{ dbt.safe_cast('order_summary.gross_sales', type_double()) }} as gross_sales,
        {{ dbt.safe_cast('order_summary.returned_amount', type_double()) }} as returned_amount,
        order_summary.return_rate,
        order_summary.n_returns,

        ----------  engagement (optional source)
        {{ dbt.safe_cast('coalesce(engagement.events_90d, 0)', dbt.type_bigint()) }} as events_90d,
        {{ dbt.safe_cast('coalesce(engagement.event_types, 0)', dbt.type_bigint()) }} as event_types,
        engagement.days_since_last_event,

        ----------  demographics (optional source)
        {{ dbt.safe_cast(
            'coalesce(demographics.age, extract(year from order_summary.as_of_date) - demographics.birth_year)',
            dbt.type_int()
        ) }} as age,
        demographics.gender,
        demographics.region,
        demographics.signup_date

    from order_summary
    left join rfm
        on order_summary.customer_id = rfm.customer_id
    left join lifetimes
        on order_summary.customer_id = lifetimes.customer_id
    left join engagement
        on order_summary.customer_id = engagement.customer_id
    left join demographics
        on order_summary.customer_id = demographics.customer_id

)

select * from final
