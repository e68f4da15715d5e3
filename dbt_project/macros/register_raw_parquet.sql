{#
    Registers the raw.* source tables on an engine other than DuckDB from Parquet
    written by the Python ingest (one per source: `COPY raw.transactions TO
    '<path>/transactions.parquet'`, see docs/scaling.md), so the dbt models can run there:

        dbt run-operation register_raw_parquet --target spark --args '{path: /abs/raw}'

    `path` is a folder (local, HDFS, s3://, abfss://) holding `<table>.parquet` for every
    table of the source `raw` (a file or a folder of part files). The tables point at
    the files (no copy); re-running replaces them. On DuckDB the ingest writes raw.*
    itself, so there is nothing to register.
#}
{% macro register_raw_parquet(path) -%}
    {{ return(adapter.dispatch('register_raw_parquet', 'custseg')(path)) }}
{%- endmacro %}

{% macro default__register_raw_parquet(path) -%}
    {{ exceptions.raise_compiler_error(
        "register_raw_parquet is for Spark-like targets; on " ~ target.type
        ~ " the Python ingest writes raw.* (orchestration/ingest/load.py)"
    ) }}
{%- endmacro %}

{% macro spark__register_raw_parquet(path) -%}
    {%- set folder = path | string | trim -%}
    {%- if folder == '' -%}
        {{ exceptions.raise_compiler_error("register_raw_parquet: give the Parquet folder as path") }}
    {%- endif -%}
    {%- set folder = folder.rstrip('/') -%}
    {%- set tables = [] -%}
    {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
        {%- do tables.append(source) -%}
    {%- endfor -%}
    {%- for source in tables | sort(attribute='name') -%}
        {%- if loop.first %}
            {% do run_query('create schema if not exists ' ~ source.schema) %}
        {%- endif %}
        {%- set relation = source.schema ~ '.' ~ source.identifier -%}
        {%- set location = folder ~ '/' ~ source.identifier ~ '.parquet' -%}
        {% do run_query('drop table if exists ' ~ relation) %}
        {% do run_query(
            "create table " ~ relation ~ " using parquet location '" ~ dbt.escape_single_quotes(location) ~ "'"
        ) %}
        {{ log('registered ' ~ relation ~ ' -> ' ~ location, info=true) }}
    {%- endfor %}
{%- endmacro %}
