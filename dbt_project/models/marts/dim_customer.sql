{#
    One row per customer in customer_features (customers in = customers out),
    with every feature plus the segment and the value / churn scores of the ML step.
#}

with

features as (

    select * from {{ ref('customer_features') }}

),

clusters as (

    select * from {{ ref('stg_ml__customer_clusters') }}

),

scores as (

    select * from {{ ref('stg_ml__customer_scores') }}

),

final as (

    select
        features.*,
        clusters.cluster_id,
        clusters.segment_name,
        clusters.cluster_is_noise,
        clusters.segmentation_model_version,
        {{ dbt.safe_cast('scores.p_alive', type_double()) }} as p_alive,
        scores.p_alive_note,
        {{ dbt.safe_cast('scores.churn_probability', type_double()) }} as churn_probability,
        scores.churn_risk_band,
        scores.expected_purchases_churn_horizon,
        scores.expected_purchases_clv_horizon,
        {{ dbt.safe_cast('scores.expected_avg_spend', type_double()) }} as expected_avg_spend,
        {{ dbt.safe_cast('scores.clv', type_double()) }} as clv,
        {{ dbt.safe_cast('scores.revenue_at_risk', type_double()) }} as revenue_at_risk,
        scores.churn_horizon_days,
        scores.clv_horizon_days

    from features
    left join clusters
        on features.customer_id = clusters.customer_id
    left join scores
        on features.customer_id = scores.customer_id

)

select * from final
