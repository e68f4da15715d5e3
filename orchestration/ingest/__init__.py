"""The ingest stage: read a delivery (files or a database), apply the value
rules, quarantine what breaks them, and publish ``raw.*`` with its load log."""
