{#
    One row per customer per snapshot date (the features' as-of date): segment,
    RFM segment and scores as they were then, so Power BI can trend them.
    Incremental: a run replaces the rows of its own snapshot date and keeps the
    others; a full refresh (`dbt build --full-refresh`) starts the history again.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['snapshot_date', 'customer_id'],
) }}

with

customers as (

    select * from {{ ref('dim_customer') }}

),

final as (

    select
        as_of_date as snapshot_date,
        {{ date_key('as_of_date') }} as date_key,
        customer_id,
        cluster_id,
        rfm_segment,
        p_alive,
        churn_probability,
        churn_risk_band,
        clv_12m,
        revenue_at_risk,
        recency_days,
        frequency,
        monetary_total,
        {#
            The segment's name as well as its id: an older snapshot's cluster_id may
            belong to an older segmentation model, whose ids dim_segment no longer
            describes. Last, so that tables created before it existed (the column is
            appended by on_schema_change) and new tables have the same column order.
        #}
        cluster_label as segment_name

    from customers

)

select * from final
