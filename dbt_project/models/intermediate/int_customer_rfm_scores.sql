{#
    RFM scores 1..5, 5 = best, by quintile of the cumulative distribution:
    score = ceil(5 * cume_dist()), clamped to 1..5. cume_dist() gives tied
    customers the same value, so ties always get the same score and the result
    does not depend on row order.
      R: ordered by recency_days descending (most recent = highest cume_dist = 5)
      F: ordered by frequency;  M: ordered by monetary_total
    fm_score = floor((f_score + m_score + 1) / 2), i.e. the mean of F and M rounded half up.
#}

with

customers as (

    select * from {{ ref('int_customer_order_summary') }}

),

distributed as (

    select
        customer_id,
        ceil(5 * cume_dist() over (order by recency_days desc)) as r_raw,
        ceil(5 * cume_dist() over (order by frequency)) as f_raw,
        ceil(5 * cume_dist() over (order by monetary_total)) as m_raw

    from customers

),

clamped as (

    select
        customer_id,
        {{ dbt.safe_cast('least(greatest(r_raw, 1), 5)', dbt.type_int()) }} as r_score,
        {{ dbt.safe_cast('least(greatest(f_raw, 1), 5)', dbt.type_int()) }} as f_score,
        {{ dbt.safe_cast('least(greatest(m_raw, 1), 5)', dbt.type_int()) }} as m_score

    from distributed

),

final as (

    select
        customer_id,
        r_score,
        f_score,
        m_score,
        {{ dbt.safe_cast('floor((f_score + m_score + 1) / 2.0)', dbt.type_int()) }} as fm_score

    from clamped

)

select * from final
