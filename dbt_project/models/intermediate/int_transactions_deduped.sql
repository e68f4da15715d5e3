{{ config(
    materialized=transactions_materialization(),
    incremental_strategy='delete+insert',
    unique_key='line_hash',
    on_schema_change='sync_all_columns',
    pre_hook='{{ delete_if_rebuilding() }}',
) }}

{#
    Exact duplicate lines (equal on every canonical column; the lineage columns
    source_file / source_row are ignored) are kept once: the first occurrence by
    file and row, with n_occurrences = how many raw lines it stands for. Re-delivered
    files and copy-paste duplicates are the usual cause.

    With var drop_exact_duplicates = false (set from the project config, e.g. for
    CDNOW, whose file lists separate same-day purchases that look identical) every
    line is kept, each with the size of its group of identical lines.

    Speed: ranking every line in a window over all canonical columns sorts all of
    them. Instead, lines whose line_hash occurs once cannot have a duplicate and pass
    straight through; only the lines of a repeated hash (duplicates, and in theory
    hash collisions) are ranked, on the columns themselves, so a collision never
    merges two different lines.

    Incremental (macros/incremental.sql): the lines of the new loads are ranked
    together with the rows already here that have the same line_hash (with their
    n_occurrences as weight), and those groups replace their old rows. A new line
    equal to a loaded one is thus still dropped, and the kept line is the first one
    by file and row among old and new.
#}

{%- set canonical = transaction_canonical_columns() %}
{%- set columns = transaction_line_columns() %}
{%- set drop_duplicates = var('drop_exact_duplicates', true) %}
{%- set state = load_state() %}

with

{% if state.mode == 'incremental' -%}

new_lines as (

    select
        {{ columns | join(',\n        ') }},
        {{ line_hash(canonical) }} as line_hash,
        {{ dbt.safe_cast('1', dbt.type_bigint()) }} as weight

    from {{ ref('stg_transactions') }}
    where source_file in (
        select file
        from {{ load_log_relation() }}
        where source = 'transactions' and load_seq > {{ state.since }}
    )

),

loaded_lines as (

    select
        {{ columns | join(',\n        ') }},
        line_hash,
        {{ 'n_occurrences' if drop_duplicates else dbt.safe_cast('1', dbt.type_bigint()) }} as weight

    from {{ this }}
    where line_hash in (select line_hash from new_lines)

),

candidates as (

    select * from new_lines
    union all
    select * from loaded_lines

),

{%- else %}

lines as (

    select
        {{ columns | join(',\n        ') }},
        {{ line_hash(canonical) }} as line_hash,
        {{ dbt.safe_cast('1', dbt.type_bigint()) }} as weight

    from {{ ref('stg_transactions') }}

),

repeated_hashes as (

    select line_hash
    from lines
    group by line_hash
    having count(*) > 1

),

candidates as (

    select lines.*
    from lines
    where line_hash in (select line_hash from repeated_hashes)

),

single_lines as (

    select lines.*
    from lines
    where not exists (
        select 1 from repeated_hashes where repeated_hashes.line_hash = lines.line_hash
    )

),

{%- endif %}

ranked as (

    select
        candidates.*,
        row_number() over (
            partition by {{ canonical | join(', ') }}
            order by source_file nulls last, source_row nulls last
        ) as occurrence,
        sum(weight) over (partition by {{ canonical | join(', ') }}) as group_weight

    from candidates

),

deduped as (

    select
        {{ columns | join(',\n        ') }},
        {{ dbt.safe_cast('group_weight', dbt.type_bigint()) }} as n_occurrences,
        line_hash

    from ranked
    {% if drop_duplicates -%}
    where occurrence = 1
    {%- endif %}

    {%- if state.mode != 'incremental' %}

    union all

    select
        {{ columns | join(',\n        ') }},
        weight as n_occurrences,
        line_hash

    from single_lines
    {%- endif %}

),

final as (

    select
        deduped.*,
        {{ load_seq_literal(state) }} as load_seq

    from deduped

)

select * from final
