{#
    RFM scores 1..5, 5 = best, by quintile of the rank:
    score = 1 + floor(5 * percent_rank()), clamped to 1..5.
    percent_rank() gives a tied group the rank of its first member, so ties always
    share a score, the result does not depend on row order, and a tie is scored
    conservatively: a customer scores 5 only when above 80 % of customers. This
    matters for F: one-time buyers (often most customers) get F = 1, which the
    segment grid needs (New Customers = R 5, FM 1); ceil(5 * cume_dist()) would
    lift them all to F = 3 when 60 % of customers buy once.
      R: ordered by recency_days descending (most recent = highest rank)
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
        1 + floor(5 * percent_rank() over (order by recency_days desc)) as r_raw,
        1 + floor(5 * percent_rank() over (order by frequency)) as f_raw,
        1 + floor(5 * percent_rank() over (order by monetary_total)) as m_raw

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
