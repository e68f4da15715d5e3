{# RFM segment name per customer from the (r_score, fm_score) grid in the seed rfm_segment_map. #}

with

scores as (

    select * from {{ ref('int_customer_rfm_scores') }}

),

segment_map as (

    select * from {{ ref('rfm_segment_map') }}

),

final as (

    select
        scores.customer_id,
        scores.r_score,
        scores.f_score,
        scores.m_score,
        scores.fm_score,
        {{ dbt.safe_cast('segment_map.rfm_segment', dbt.type_string()) }} as rfm_segment

    from scores
    left join segment_map
        on scores.r_score = segment_map.r_score
        and scores.fm_score = segment_map.fm_score

)

select * from final
