"""The survey design of a weighted estimate: which fields hold weights, strata and clusters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Design:
    """Survey design variables (field paths, or submission metadata columns for clusters)."""

    weights: str | None = None
    strata: str | None = None
    clusters: str | None = None

    @property
    def is_complex(self) -> bool:
        return any((self.weights, self.strata, self.clusters))
