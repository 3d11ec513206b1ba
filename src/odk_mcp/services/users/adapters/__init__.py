"""Storage of the users service: table definitions and queries."""
