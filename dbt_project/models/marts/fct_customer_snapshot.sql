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
{#- The pre-hook that renames an older table's clv_12m is in _marts__models.yml. #}

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
        clv,
        revenue_at_risk,
        recency_days,
        frequency,
        monetary_total,
        {#
            The segment's name as well as its id: an older snapshot's cluster_id may
            belong to an older segmentation model, whose ids dim_segment no longer
            describes. It and the horizons come last, so that tables created before
            they existed (on_schema_change appends them) and new tables have the same
            column order; older snapshots have no horizon (NULL).
        #}
        segment_name,
        churn_horizon_days,
        clv_horizon_days

    from customers

)

select * from final
