"""What every stage shares: the project config, the workdir and its lock, file
permissions, SQL quoting and the transient-error classification (no Dagster imports)."""
