"""Pure logic of the aggregation service (no I/O)."""
