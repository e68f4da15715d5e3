{#
    Incremental builds of the transaction-grain models: int_transactions_deduped,
    int_orders and int_customer_order_totals (DuckDB; other engines build them as tables).

    raw.load_log numbers every load (load_seq): a full load replaces raw.*, an
    incremental load appends inbox files (or a database range) to raw.transactions,
    and a raw line's source file (or range) belongs to exactly one load of the current
    generation. Every row these models write carries the load_seq of the newest load
    in raw.load_log at that moment, so a model's max(load_seq) says which loads it has
    seen. An incremental run then reads only what is newer than that:
      int_transactions_deduped  the raw lines of the files loaded after it;
      int_orders                the orders with a line written after it;
      int_customer_order_totals the customers with an order written after it;
    recomputes those groups from all their rows and replaces them (delete+insert).

    The model starts over instead (deletes its rows, then inserts everything) when it
    cannot trust what it has: a full load came after its newest row (raw.* was
    replaced), its rows have no load_seq (built before this scheme, or without a load
    log), or there is no raw.load_log (a benchmark, another engine). `dbt build
    --full-refresh` rebuilds them from scratch too; the Dagster features step passes it
    whenever its run loaded raw.* in full (orchestration/assets/dbt.py).

    Not detected: a change of the dbt project or of var drop_exact_duplicates between
    two incremental runs. Every full run rebuilds, so the next one applies it.
#}

{# Incremental where the adapter has delete+insert and the ingest keeps a load log (DuckDB). #}
{% macro transactions_materialization() -%}
    {{ return(adapter.dispatch('transactions_materialization', 'custseg')()) }}
{%- endmacro %}

{% macro default__transactions_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{% macro duckdb__transactions_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}


{#
    What this run of the current model does, decided when it is compiled:
      mode  'full'        a new table (first build, --full-refresh, or not incremental);
            'rebuild'     everything again into the existing table (delete_if_rebuilding);
            'incremental' only what came after load `since`;
      since the model's newest load_seq (incremental only);
      seq   the newest load_seq in raw.load_log, stamped on every row written (none
            without a load log).
#}
{% macro load_state() -%}
    {%- set state = {'mode': 'full', 'since': none, 'seq': none} -%}
    {#- A dbt unit test of the model: its inputs are fixtures, there is no load log. -#}
    {%- if model.resource_type == 'unit_test' -%}
        {{ return(state) }}
    {%- endif -%}
    {%- set load_log = load_log_relation() -%}
    {%- if not execute -%}
        {{ return(state) }}
    {%- endif -%}
    {%- set log_relation = load_relation(load_log) -%}
    {%- set latest_full = none -%}
    {%- if log_relation is not none -%}
        {#- Rows logged before load_seq / mode existed: a full load numbered 0. -#}
        {%- set row = run_query(
            "select coalesce(max(load_seq), 0),"
            ~ " coalesce(max(case when coalesce(mode, 'full') = 'full' then coalesce(load_seq, 0) end), 0)"
            ~ " from " ~ log_relation
        ).rows[0] -%}
        {%- do state.update({'seq': row[0] | int}) -%}
        {%- set latest_full = row[1] | int -%}
    {%- endif -%}
    {%- if is_incremental() -%}
        {%- do state.update({'mode': 'rebuild'}) -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- if log_relation is not none and 'load_seq' in columns -%}
            {%- set since = run_query('select max(load_seq) from ' ~ this).rows[0][0] -%}
            {%- if since is not none and latest_full <= since | int -%}
                {%- do state.update({'mode': 'incremental', 'since': since | int}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(state) }}
{%- endmacro %}


{#
    raw.load_log, beside the source raw.transactions. Not a dbt source of its own: it
    would need a Dagster asset key of its own, and it is written by the same ingest step
    as raw.transactions (whose source the incremental models thus depend on).
#}
{% macro load_log_relation() -%}
    {%- set transactions = source('raw', 'transactions') -%}
    {{ return(api.Relation.create(
        database=transactions.database, schema=transactions.schema, identifier='load_log'
    )) }}
{%- endmacro %}


{# The load_seq stamped on the rows this run writes. #}
{% macro load_seq_literal(state) -%}
    {{ dbt.safe_cast('null' if state.seq is none else state.seq, dbt.type_bigint()) }}
{%- endmacro %}


{# Pre-hook of the incremental models: empty the table when this run rebuilds it. #}
{% macro delete_if_rebuilding() -%}
    {%- if execute and load_state().mode == 'rebuild' -%}
        delete from {{ this }}
    {%- endif -%}
{%- endmacro %}


{#
    Pre-hook of an incremental model one of whose columns was renamed: an existing table
    still has the old name, which append_new_columns would keep beside an empty new one.
    Renamed in place instead, so the history keeps its values (fct_customer_snapshot:
    clv_12m became clv when the CLV horizon moved into a column of its own).
#}
{% macro rename_column_if_present(old, new) -%}
    {%- if execute and is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- if old in columns and new not in columns -%}
            alter table {{ this }} rename column {{ old }} to {{ new }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
