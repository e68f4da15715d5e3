"""Reading transactions from a database server through Python drivers
(full and incremental loads, the high-water mark, error classification)."""
