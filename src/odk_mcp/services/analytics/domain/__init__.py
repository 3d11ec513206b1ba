"""Pure analytics: statistics and data-quality rules over columnar (Polars) frames, no I/O."""
