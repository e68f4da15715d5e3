{#
    One row per (from_snapshot_date, from_segment, to_segment): how the customers of
    one snapshot date of fct_customer_snapshot moved between segments by the next
    snapshot date. Segments are compared by name (fct_customer_snapshot.segment_name),
    since the cluster ids of two snapshots can come from different segmentation models.
    Customers only in the later snapshot come from '(new customer)'; customers only in
    the earlier one go to '(no longer present)' (the labels of ml.segment_migration).
    No rows while there is only one snapshot date.
#}

with

snapshot as (

    select
        snapshot_date,
        customer_id,
        {# Rows written before segment_name existed: named by cluster id, as in mart_churn_by_segment. #}
        coalesce(
            segment_name,
            {{ dbt.concat([
                "'(unnamed cluster '",
                dbt.safe_cast('cluster_id', dbt.type_string()),
                "')'",
            ]) }}
        ) as segment_name

    from {{ ref('fct_customer_snapshot') }}

),

snapshot_dates as (

    select distinct snapshot_date from snapshot

),

date_pairs as (

    select
        earlier.snapshot_date as from_snapshot_date,
        min(later.snapshot_date) as to_snapshot_date

    from snapshot_dates as earlier
    inner join snapshot_dates as later
        on later.snapshot_date > earlier.snapshot_date
    group by earlier.snapshot_date

),

from_side as (

    select
        date_pairs.from_snapshot_date,
        date_pairs.to_snapshot_date,
        snapshot.customer_id,
        snapshot.segment_name

    from date_pairs
    inner join snapshot
        on snapshot.snapshot_date = date_pairs.from_snapshot_date

),

to_side as (

    select
        date_pairs.from_snapshot_date,
        date_pairs.to_snapshot_date,
        snapshot.customer_id,
        snapshot.segment_name

    from date_pairs
    inner join snapshot
        on snapshot.snapshot_date = date_pairs.to_snapshot_date

),

moves as (

    select
        coalesce(from_side.from_snapshot_date, to_side.from_snapshot_date) as from_snapshot_date,
        coalesce(from_side.to_snapshot_date, to_side.to_snapshot_date) as to_snapshot_date,
        coalesce(from_side.segment_name, '(new customer)') as from_segment,
        coalesce(to_side.segment_name, '(no longer present)') as to_segment

    from from_side
    full outer join to_side
        on from_side.from_snapshot_date = to_side.from_snapshot_date
        and from_side.customer_id = to_side.customer_id

),

counts as (

    select
        from_snapshot_date,
        to_snapshot_date,
        from_segment,
        to_segment,
        count(*) as customers

    from moves
    group by from_snapshot_date, to_snapshot_date, from_segment, to_segment

),

from_totals as (

    select
        from_snapshot_date,
        from_segment,
        sum(customers) as from_customers

    from counts
    group by from_snapshot_date, from_segment

),

final as (

    select
        counts.from_snapshot_date,
        counts.to_snapshot_date,
        {{ dbt.safe_cast('counts.from_segment', dbt.type_string()) }} as from_segment,
        {{ dbt.safe_cast('counts.to_segment', dbt.type_string()) }} as to_segment,
        {{ dbt.safe_cast('counts.customers', dbt.type_bigint()) }} as customers,
        {{ dbt.safe_cast('counts.customers', type_double()) }}
            / {{ dbt.safe_cast('from_totals.from_customers', type_double()) }} as share_of_from

    from counts
    inner join from_totals
        on counts.from_snapshot_date = from_totals.from_snapshot_date
        and counts.from_segment = from_totals.from_segment

)

select * from final
