"""Storage of the forms service."""
