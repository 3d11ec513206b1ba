"""Storage adapters of the analytics service (read model loading, findings tables)."""
