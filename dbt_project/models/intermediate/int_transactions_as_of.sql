{{ config(materialized='view') }}

{#
    The deduplicated transaction lines that the features may see: those dated
    before the as-of date. A view: a filter, which its readers apply as they scan
    (copying every line into a table cost as much as the deduplication itself).
#}

with

transactions as (

    select * from {{ ref('int_transactions_deduped') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

before_as_of as (

    select transactions.*

    from transactions
    cross join as_of
    where transactions.order_date < as_of.as_of_date

)

select * from before_as_of
