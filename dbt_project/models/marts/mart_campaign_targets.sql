{#
    One row per customer selected for a campaign (grain: customer_id), ranked by
    expected value = clv x churn_probability x save_rate: the value at risk the
    action is assumed to keep. Customers of segments whose playbook row (seed
    segment_actions) has in_campaign = false are not selected, nor customers whose
    expected value is below the dbt var campaign_min_expected_value (project config
    campaign.min_expected_value). The reason column spells the arithmetic out.
#}

{%- set min_value = var('campaign_min_expected_value') %}

with

customers as (

    select
        customer_id,
        cluster_id,
        clv,
        churn_probability,
        churn_risk_band

    from {{ ref('dim_customer') }}

),

segments as (

    select * from {{ ref('dim_segment') }}
    where in_campaign

),

valued as (

    select
        customers.customer_id,
        customers.cluster_id,
        segments.segment_name,
        segments.recommended_action,
        segments.channel,
        segments.campaign_priority,
        segments.message_idea,
        customers.clv,
        customers.churn_probability,
        customers.churn_risk_band,
        segments.save_rate,
        customers.clv * customers.churn_probability * segments.save_rate as expected_value

    from customers
    inner join segments
        on customers.cluster_id = segments.cluster_id

),

selected as (

    select * from valued
    where expected_value >= {{ min_value }}

),

final as (

    select
        {{ dbt.safe_cast(
            'row_number() over (order by expected_value desc, customer_id)', dbt.type_bigint()
        ) }} as target_rank,
        customer_id,
        cluster_id,
        segment_name,
        recommended_action,
        channel,
        campaign_priority,
        message_idea,
        clv,
        churn_probability,
        churn_risk_band,
        save_rate,
        expected_value,
        {{ dbt.concat([
            "'CLV '",
            dbt.safe_cast('round(clv, 2)', dbt.type_string()),
            "' x churn probability '",
            dbt.safe_cast('round(churn_probability, 2)', dbt.type_string()),
            "' x assumed save rate '",
            dbt.safe_cast('save_rate', dbt.type_string()),
            "' = expected value '",
            dbt.safe_cast('round(expected_value, 2)', dbt.type_string()),
            "' ('",
            'segment_name',
            "': '",
            'recommended_action',
            "')'",
        ]) }} as reason

    from selected

)

select * from final
