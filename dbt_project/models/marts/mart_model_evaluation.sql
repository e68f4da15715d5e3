{#
    How good are these numbers? One row per (model_family, candidate, metric) of the
    two evidence tables the refits write, with the family's production value and its
    best baseline value of the same metric side by side.

    The best baseline is the baseline row with the best value (the largest when
    higher_is_better, else the smallest; ties by candidate name). beats_best_baseline
    compares a production or candidate row with it; it is NULL where no comparison
    means anything: baseline rows, rows without a value, metrics without a baseline.
#}

with

evidence as (

    select * from {{ ref('stg_ml__segmentation_evidence') }}
    union all
    select * from {{ ref('stg_ml__value_evidence') }}

),

production as (

    select
        model_family,
        metric,
        candidate as production_candidate,
        value as production_value

    from evidence
    where role = 'production'

),

ranked_baselines as (

    select
        model_family,
        metric,
        candidate as best_baseline,
        value as best_baseline_value,
        row_number() over (
            partition by model_family, metric
            order by case when higher_is_better then -value else value end, candidate
        ) as rank_in_metric

    from evidence
    where role = 'baseline' and value is not null

),

best_baseline as (

    select model_family, metric, best_baseline, best_baseline_value
    from ranked_baselines
    where rank_in_metric = 1

),

final as (

    select
        evidence.model_family,
        evidence.candidate,
        evidence.metric,
        evidence.role,
        evidence.value,
        evidence.higher_is_better,
        production.production_candidate,
        production.production_value,
        best_baseline.best_baseline,
        best_baseline.best_baseline_value,
        case
            when evidence.role = 'baseline'
                or evidence.value is null
                or best_baseline.best_baseline_value is null
                then cast(null as {{ dbt.type_boolean() }})
            when evidence.higher_is_better
                then evidence.value > best_baseline.best_baseline_value
            else evidence.value < best_baseline.best_baseline_value
        end as beats_best_baseline,
        evidence.role = 'production' and evidence.metric = 'not_evaluated' as is_not_evaluated,
        evidence.cutoff_date,
        evidence.horizon_days,
        evidence.customers,
        evidence.note,
        evidence.run_id,
        evidence.evaluated_at

    from evidence
    left join production
        on evidence.model_family = production.model_family
        and evidence.metric = production.metric
    left join best_baseline
        on evidence.model_family = best_baseline.model_family
        and evidence.metric = best_baseline.metric

)

select * from final
