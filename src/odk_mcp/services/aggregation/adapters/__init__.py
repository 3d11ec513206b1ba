"""Storage of the aggregation service."""
