"""The insight report as a PDF (matplotlib's PdfPages: no system libraries needed)."""

from __future__ import annotations

import io
import textwrap

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages

from odk_mcp.services.analytics.report.charts import all_figures
from odk_mcp.services.analytics.report.content import ReportContent

A4 = (8.27, 11.69)
LINES_PER_PAGE = 60


def render_pdf(content: ReportContent) -> bytes:
    buffer = io.BytesIO()
    with PdfPages(
        buffer, metadata={"Title": f"{content.title} — insight report", "Creator": "odk-mcp"}
    ) as pdf:
        lines = _summary_lines(content)
        for start in range(0, len(lines), LINES_PER_PAGE):
            page = plt.figure(figsize=A4)
            page.text(
                0.07,
                0.96,
                "\n".join(lines[start : start + LINES_PER_PAGE]),
                va="top",
                family="DejaVu Sans",
                fontsize=9,
            )
            pdf.savefig(page)
            plt.close(page)
        for caption, draw in all_figures(content):
            figure = draw()
            figure.suptitle(caption[:90], fontsize=9, y=1.02)
            pdf.savefig(figure, bbox_inches="tight")
            plt.close(figure)
    return buffer.getvalue()


def _summary_lines(content: ReportContent) -> list[str]:
    duration = f"{content.median_duration_seconds / 60:.1f} min" if content.median_duration_seconds else "-"
    lines = [
        f"{content.title} — insight report",
        f"Form {content.xml_form_id}, generated {content.generated_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"Submissions: {content.submissions:,}    Enumerators: {content.enumerators:,}    "
        f"Median interview: {duration}",
        f"Flagged submissions: {content.flagged_submissions:,}",
        "",
        "Recommendations",
    ]
    for i, r in enumerate(content.recommendations, 1):
        lines += textwrap.wrap(
            f"{i}. {r.title}. {r.action} Because: {r.because}", 100, subsequent_indent="   "
        )
    if not content.recommendations:
        lines.append("No rule fired: nothing to recommend.")
    lines += ["", f"Notable associations ({content.screening.tested} pairs tested, BH q < 0.05, V >= 0.1)"]
    for a in content.screening.notable[:15]:
        lines.append(
            f"   {a.row_field} x {a.col_field}: V = {a.cramers_v:.2f}, "
            f"q = {a.q_value:.2g} ({a.test}, n = {a.n:,})"
        )
    lines += ["", "Quality findings by rule"]
    lines += [f"   {rule}: {n:,}" for rule, n in content.findings_by_rule] or ["   none"]
    return lines
