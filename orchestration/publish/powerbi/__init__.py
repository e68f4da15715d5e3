"""The Power BI semantic model (TMDL) written from the dbt marts and ``model.yml``."""
