"""The publish stage: the marts written for Power BI (Parquet, a read-only
DuckDB copy), swapped file by file into a real folder."""
