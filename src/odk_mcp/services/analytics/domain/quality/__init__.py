"""Data-quality rules: each takes the form's frame and fields and returns findings."""
