{#
    ml.customer_scores (Python: BG/NBD + Gamma-Gamma + churn model) with
    warehouse types: money as exact decimals, probabilities as exact decimals,
    so the marts' sums and means are exact and re-runs are bit-identical.
#}

with

source as (

    select * from {{ source('ml', 'customer_scores') }}

),

renamed as (

    select
        ----------  ids
        {{ dbt.safe_cast('customer_id', dbt.type_string()) }} as customer_id,

        ----------  probabilities
        {{ dbt.safe_cast('p_alive', type_probability()) }} as p_alive,
        {{ dbt.safe_cast('p_alive_note', dbt.type_string()) }} as p_alive_note,
        {{ dbt.safe_cast('churn_probability', type_probability()) }} as churn_probability,
        {{ dbt.safe_cast('churn_risk_band', dbt.type_string()) }} as churn_risk_band,

        ----------  expectations
        {{ dbt.safe_cast('expected_purchases_churn_horizon', type_double()) }}
            as expected_purchases_churn_horizon,
        {{ dbt.safe_cast('expected_purchases_clv_horizon', type_double()) }}
            as expected_purchases_clv_horizon,
        {{ dbt.safe_cast('expected_avg_spend', type_money()) }} as expected_avg_spend,
        {{ dbt.safe_cast('clv', type_money()) }} as clv,
        {{ dbt.safe_cast('revenue_at_risk', type_money()) }} as revenue_at_risk,

        ----------  horizons (days; config scoring)
        {{ dbt.safe_cast('churn_horizon_days', dbt.type_int()) }} as churn_horizon_days,
        {{ dbt.safe_cast('clv_horizon_days', dbt.type_int()) }} as clv_horizon_days,

        ----------  lineage
        {{ dbt.safe_cast('as_of_date', dbt.type_timestamp()) }} as scores_as_of,
        {{ dbt.safe_cast('scored_at', dbt.type_timestamp()) }} as scored_at

    from source

)

select * from renamed
