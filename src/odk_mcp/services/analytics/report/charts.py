"""Server-side charts (matplotlib, Agg backend: no display, no GUI toolkit), as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from odk_mcp.services.analytics.report.content import QuestionSummary, ReportContent

COLOUR = "#2b6cb0"
FLAG = "#c53030"


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def question_figure(question: QuestionSummary) -> Figure:
    figure, axes = plt.subplots(figsize=(6, 2.8))
    if question.values:
        axes.hist(question.values, bins=30, color=COLOUR)
        axes.set_ylabel("submissions")
    else:
        labels = [c for c, _ in question.categories][::-1]
        axes.barh(labels, [n for _, n in question.categories][::-1], color=COLOUR)
        axes.set_xlabel("answers")
    axes.set_title(_short(question.label), fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def timeline_figure(content: ReportContent) -> Figure:
    figure, axes = plt.subplots(figsize=(7, 2.6))
    counts = content.daily.series[0].counts if content.daily.series else []
    axes.bar([d.isoformat() for d in content.daily.periods], counts, color=COLOUR, width=0.9)
    step = max(1, len(counts) // 10)
    axes.set_xticks(range(0, len(counts), step))
    axes.set_title("Submissions per day (UTC)", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    figure.autofmt_xdate()
    return figure


def flags_figure(content: ReportContent) -> Figure:
    figure, axes = plt.subplots(figsize=(6, 2.8))
    rules = [r for r, _ in content.findings_by_rule][::-1]
    axes.barh(rules or ["(none)"], [n for _, n in content.findings_by_rule][::-1] or [0], color=FLAG)
    axes.set_title("Quality findings by rule", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def enumerator_figure(content: ReportContent) -> Figure:
    rows = sorted(content.quality.enumerators, key=lambda r: r.findings_per_100, reverse=True)[:20]
    figure, axes = plt.subplots(figsize=(6, max(2.4, 0.25 * len(rows) + 1)))
    axes.barh([r.enumerator for r in rows][::-1], [r.findings_per_100 for r in rows][::-1], color=FLAG)
    axes.set_xlabel("findings per 100 interviews")
    axes.set_title("Enumerators with the most findings", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def all_figures(content: ReportContent) -> list[tuple[str, Callable[[], Figure]]]:
    """Every chart of the report, in order, with its caption; each drawn only when called, so
    one figure at a time is in memory."""
    charts: list[tuple[str, Callable[[], Figure]]] = [
        ("Submissions over time", lambda: timeline_figure(content)),
        ("Quality findings", lambda: flags_figure(content)),
    ]
    if content.quality.enumerators:
        charts.append(("Enumerators", lambda: enumerator_figure(content)))
    for question in content.questions:
        if question.answered:
            charts.append((question.label, lambda q=question: question_figure(q)))  # type: ignore[misc]
    return charts


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
