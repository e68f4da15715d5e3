{# Every one of the 25 (r_score, fm_score) cells has a segment: returns the missing cells. #}

with

scores as (

    select 1 as score union all select 2 union all select 3 union all select 4 union all select 5

),

grid as (

    select r.score as r_score, fm.score as fm_score
    from scores as r
    cross join scores as fm

)

select grid.r_score, grid.fm_score
from grid
left join {{ ref('rfm_segment_map') }} as segment_map
    on grid.r_score = segment_map.r_score
    and grid.fm_score = segment_map.fm_score
where segment_map.rfm_segment is null
