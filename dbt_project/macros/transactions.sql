{#
    Shared transaction expressions, used by more than one model so that the
    definitions cannot drift apart.
#}

{# The columns that identify a transaction line (everything but lineage). #}
{% macro transaction_canonical_columns() -%}
    {{ return([
        'customer_id', 'order_id', 'product_id', 'category', 'country', 'channel',
        'quantity', 'unit_price', 'amount', 'is_cancellation', 'ordered_at',
    ]) }}
{%- endmacro %}


{# The columns of a transaction line in stg_transactions and int_transactions_deduped. #}
{% macro transaction_line_columns() -%}
    {{ return(transaction_canonical_columns() + ['is_return', 'order_date', 'source_file', 'source_row']) }}
{%- endmacro %}


{#
    A 64-bit hash of the canonical columns, equal for exact duplicates. Only used to
    find candidate duplicates and the rows an incremental run touches; lines are
    always compared on the columns themselves, so a collision costs a comparison,
    never a wrong merge. DuckDB and Spark hash natively (NULL-safe); elsewhere the
    MD5 text of the columns.
#}
{% macro line_hash(columns) -%}
    {{ return(adapter.dispatch('line_hash', 'custseg')(columns)) }}
{%- endmacro %}

{% macro default__line_hash(columns) -%}
    {{ surrogate_key(columns) }}
{%- endmacro %}

{% macro duckdb__line_hash(columns) -%}
    {# hash() is a UBIGINT; the top 63 bits fit a BIGINT. #}
    cast(hash({{ columns | join(', ') }}) >> 1 as bigint)
{%- endmacro %}

{% macro spark__line_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}


{#
    One row per order from a relation of transaction lines (columns as in
    stg_transactions). An order's date is the date of its first line, last_line_date
    the date of its last. gross_amount - returned_amount = net_amount by construction.
    Amounts and item_count stay exact decimals (type_money / type_quantity); the marts
    cast them.
#}
{% macro aggregate_orders(lines_relation) -%}
    {#-
        distinct_products: count(distinct product_id) over every line made DuckDB build a
        second hash table of all lines (at 10M lines 5 to 9 s of the model's 9 to 11 s).
        An order of one line has count(product_id) products; only the orders of several
        lines count their distinct products, from their lines.
    -#}
    with

    order_totals as (

        select
            order_id,
            customer_id,
            min(ordered_at) as ordered_at,
            min(order_date) as order_date,
            {{ sum_money('amount') }} as net_amount,
            {{ sum_money('case when not is_return then amount else 0 end') }} as gross_amount,
            {{ sum_money('case when is_return then -amount else 0 end') }} as returned_amount,
            {{ sum_quantity('quantity') }} as item_count,
            {{ dbt.safe_cast('count(*)', dbt.type_bigint()) }} as line_count,
            {{ dbt.safe_cast('sum(case when is_return then 1 else 0 end)', dbt.type_bigint()) }}
                as return_line_count,
            {{ dbt.safe_cast('count(product_id)', dbt.type_bigint()) }} as product_lines,
            min(case when is_return then 1 else 0 end) = 1 as is_return_order,
            max(order_date) as last_line_date

        from {{ lines_relation }}
        group by order_id, customer_id

    ),

    multi_line_products as (

        select
            order_id,
            customer_id,
            {{ dbt.safe_cast('count(product_id)', dbt.type_bigint()) }} as distinct_products

        from (

            select distinct order_id, customer_id, product_id
            from {{ lines_relation }}
            where order_id in (select order_id from order_totals where line_count > 1)

        ) as order_products
        group by order_id, customer_id

    )

    select
        order_totals.order_id,
        order_totals.customer_id,
        order_totals.ordered_at,
        order_totals.order_date,
        order_totals.net_amount,
        order_totals.gross_amount,
        order_totals.returned_amount,
        order_totals.item_count,
        order_totals.line_count,
        order_totals.return_line_count,
        case
            when order_totals.line_count = 1 then order_totals.product_lines
            else coalesce(multi_line_products.distinct_products, 0)
        end as distinct_products,
        order_totals.is_return_order,
        order_totals.last_line_date

    from order_totals
    left join multi_line_products
        on order_totals.order_id = multi_line_products.order_id
        and order_totals.customer_id = multi_line_products.customer_id
{%- endmacro %}


{#
    Per customer, from a relation of orders (columns as in int_orders) and one of
    their lines: the order facts that do not depend on the as-of date. One row per
    customer with an order. The same code serves int_customer_order_totals (all
    orders) and int_customer_order_summary as of an earlier date (its orders before
    it), so both give identical numbers for the same orders.
#}
{% macro customer_order_facts(orders_relation, lines_relation) -%}
    select
        from_orders.customer_id,
        from_orders.first_order_date,
        from_orders.last_order_date,
        {{ dbt.safe_cast('from_orders.frequency', dbt.type_bigint()) }} as frequency,
        from_orders.monetary_total,
        from_orders.gross_sales,
        from_orders.returned_amount,
        {{ dbt.safe_cast('from_orders.n_returns', dbt.type_bigint()) }} as n_returns,
        {{ dbt.safe_cast('coalesce(from_lines.distinct_products, 0)', dbt.type_bigint()) }}
            as distinct_products

    from (

        select
            customer_id,
            min(order_date) as first_order_date,
            max(order_date) as last_order_date,
            {#- count(distinct order_id) of the purchase orders: an order has one row per
                customer, so a count (a distinct count cost DuckDB 10x more). -#}
            sum(case when not is_return_order then 1 else 0 end) as frequency,
            {{ sum_money('net_amount') }} as monetary_total,
            {{ sum_money('gross_amount') }} as gross_sales,
            {{ sum_money('returned_amount') }} as returned_amount,
            sum(return_line_count) as n_returns

        from {{ orders_relation }}
        group by customer_id

    ) as from_orders

    left join (

        select
            customer_id,
            count(distinct case when not is_return then product_id end) as distinct_products

        from {{ lines_relation }}
        group by customer_id

    ) as from_lines
        on from_orders.customer_id = from_lines.customer_id
{%- endmacro %}


{#
    Per customer, from a relation of orders: lifetimes' purchase days (a day with at
    least one non-return order, spend = gross sales of those orders) summarised with
    exact sums only (macros/exact_aggregates.sql), so re-runs give identical bits.
    One row per customer with a purchase day.
      repeat_spend   spend of the purchase days after the first
      gap_mean/_std  mean and sample standard deviation of the days between purchase days
#}
{% macro customer_purchase_day_facts(orders_relation) -%}
    select
        customer_id,
        {{ dbt.safe_cast('count(*)', dbt.type_bigint()) }} as n_purchase_days,
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date,
        {{ sum_money('case when purchase_day_number > 1 then day_spend else 0 end') }} as repeat_spend,
        {{ exact_avg('days_since_previous_purchase') }} as gap_mean,
        {{ exact_stddev_samp_int('days_since_previous_purchase') }} as gap_std

    from (

        select
            customer_id,
            purchase_date,
            day_spend,
            {{ dbt.safe_cast(
                'row_number() over (partition by customer_id order by purchase_date)',
                dbt.type_int()
            ) }} as purchase_day_number,
            {{ dbt.safe_cast(
                dbt.datediff(
                    'lag(purchase_date) over (partition by customer_id order by purchase_date)',
                    'purchase_date',
                    'day'
                ),
                dbt.type_int()
            ) }} as days_since_previous_purchase

        from (

            select
                customer_id,
                order_date as purchase_date,
                {{ sum_money('gross_amount') }} as day_spend

            from {{ orders_relation }}
            where not is_return_order
            group by customer_id, order_date

        ) as purchase_days

    ) as sequenced

    group by customer_id
{%- endmacro %}


{#
    True when the features use the default as-of date, the day after the last
    transaction: every line is before it, so the as-of models can read the all-time
    per-customer aggregates (int_customer_order_totals) instead of recomputing them.
    A var as_of_date (cut-off builds, backfills) recomputes from the lines before it.
#}
{% macro as_of_date_is_default() -%}
    {%- set value = var('as_of_date', none) -%}
    {{ return(value is none or value | string | trim == '') }}
{%- endmacro %}
