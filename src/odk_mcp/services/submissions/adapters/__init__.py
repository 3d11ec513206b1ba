"""Storage of the submissions service."""
