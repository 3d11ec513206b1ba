"""Categorical columns as Polars expressions: one answer per row, or exploded choices."""

from __future__ import annotations

import polars as pl


def answers(frame: pl.DataFrame, path: str, multiple: bool) -> pl.DataFrame:
    """Rows of (row index, value) of a categorical column, nulls and blanks dropped; a
    select_multiple column gives one row per chosen value."""
    column = pl.col(path).cast(pl.String).str.strip_chars()
    out = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"), column.alias("value"))
    if multiple:
        out = out.with_columns(pl.col("value").str.split(" ")).explode("value")
    return out.filter(pl.col("value").is_not_null() & (pl.col("value") != ""))


def is_answered(path: str) -> pl.Expr:
    return pl.col(path).is_not_null() & (pl.col(path).cast(pl.String).str.strip_chars() != "")
