"""Domain services: users, forms (and later submissions, aggregation, analytics)."""
