"""The one error the pure analytics layer raises for a request it cannot answer."""

from __future__ import annotations

from typing import Any


class AnalysisError(ValueError):
    """A request that cannot be analysed as asked (unknown field, wrong kind, too little data);
    `reason` is a stable camelCase name the API puts in the problem's details."""

    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details or {}
