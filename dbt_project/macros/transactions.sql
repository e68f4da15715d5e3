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


{#
    One row per order from a relation of transaction lines (columns as in
    stg_transactions). An order's date is the date of its first line.
    gross_amount - returned_amount = net_amount by construction. Amounts and
    item_count stay exact decimals (type_money / type_quantity); the marts cast them.
#}
{% macro aggregate_orders(lines_relation) -%}
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
        {{ dbt.safe_cast('count(distinct product_id)', dbt.type_bigint()) }} as distinct_products,
        min(case when is_return then 1 else 0 end) = 1 as is_return_order

    from {{ lines_relation }}
    group by order_id, customer_id
{%- endmacro %}
