{{ config(tags=['post_ml']) }}

{# Within each segment_type, customer and revenue shares sum to 1 (revenue share only when revenue is non-zero). #}

select
    segment_type,
    sum(customer_share) as customer_share_total,
    sum(revenue_share) as revenue_share_total

from {{ ref('mart_segment_summary') }}
group by segment_type
having abs(sum(customer_share) - 1) > 1e-9
    or (count(revenue_share) > 0 and abs(sum(revenue_share) - 1) > 1e-9)
