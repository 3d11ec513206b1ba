"""Storage of the entities service (tables of the `entities` schema and queries over them)."""
