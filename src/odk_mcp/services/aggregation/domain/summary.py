"""What a form summary says about each question, shared by its two engines (SQL over the
read model, and Polars over the columnar cache), which must give identical answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from odk_mcp.services.forms import Field

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 10
NUMERIC = frozenset({"int", "decimal"})
DATES = frozenset({"date", "dateTime"})
UNSUMMARISED = frozenset({"structure", "repeat", "binary"})


def is_select_one(f: Field) -> bool:
    return (bool(f.choices) and not f.select_multiple) or f.type == "select1"


def label(labels: dict[str, str], language: str | None) -> str | None:
    if not labels:
        return None
    if language and language in labels:
        return labels[language]
    return labels.get("default") or next(iter(labels.values()))


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float, Decimal)) else None


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def question(f: Field, instances: int, answered: int, language: str | None) -> dict[str, Any]:
    """The counts every question has."""
    return {
        "path": f.path,
        "name": f.name,
        "type": "select_multiple" if f.select_multiple else f.type,
        "label": label(f.labels, language),
        "repeat": f.repeat,
        "total": instances,
        "answered": answered,
        "missing": instances - answered,
        "missingPercent": percent(instances - answered, instances),
    }


def numeric(
    count: int, mean: Any, sd: Any, low: Any, high: Any, quantiles: list[Any] | None
) -> dict[str, Any]:
    quantiles = quantiles or []
    return {
        "count": count,
        "mean": number(mean),
        "median": number(quantiles[2]) if quantiles else None,
        "sd": number(sd),
        "min": number(low),
        "max": number(high),
        "quantiles": {f"p{round(q * 100)}": number(v) for q, v in zip(QUANTILES, quantiles, strict=False)},
        "histogram": [],
    }


def histogram(low: float, high: float, bins: dict[int, int]) -> list[dict[str, Any]]:
    """Bins 1..HISTOGRAM_BINS of `width_bucket(x, low, top, HISTOGRAM_BINS)` (the maximum
    folded into the last bin); one bin of everything when all values are equal."""
    width = (high - low) / HISTOGRAM_BINS if high > low else 0.0
    if not width:
        return [{"from": low, "to": high, "count": sum(bins.values())}]
    return [
        {"from": low + width * b, "to": low + width * (b + 1), "count": bins.get(b + 1, 0)}
        for b in range(HISTOGRAM_BINS)
    ]


def choice_counts(question: dict[str, Any], f: Field, found: dict[str, int], language: str | None) -> None:
    """Counts and percentages (of answered) per choice in list order, then values off the list."""
    answered = question["answered"]
    known = {c.value for c in f.choices}
    question["choices"] = [
        {
            "value": c.value,
            "label": label(c.labels, language),
            "count": found.get(c.value, 0),
            "percent": percent(found.get(c.value, 0), answered),
        }
        for c in f.choices
    ]
    question["otherValues"] = [
        {"value": v, "count": n, "percent": percent(n, answered)}
        for v, n in sorted(found.items(), key=lambda item: (-item[1], item[0]))
        if v not in known
    ]
