"""The insight report as one self-contained HTML page (charts inline as PNG data URIs)."""

from __future__ import annotations

import base64
from html import escape

from odk_mcp.services.analytics.report.charts import all_figures, png
from odk_mcp.services.analytics.report.content import ReportContent

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a202c}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse}td,th{padding:.25rem .6rem;border-bottom:1px solid #edf2f7;text-align:left}
.numbers{display:flex;flex-wrap:wrap;gap:1rem}
.numbers div{background:#f7fafc;padding:.6rem 1rem;border-radius:.4rem}
.numbers b{display:block;font-size:1.3rem}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#4a5568}
.why{color:#4a5568;font-size:.9rem}
"""


def render_html(content: ReportContent) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(content.title)} — insight report</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(content.title)}</h1>",
        f"<p>Form <code>{escape(content.xml_form_id)}</code>, "
        f"report generated {content.generated_at:%Y-%m-%d %H:%M} UTC.</p>",
        _numbers(content),
        "<h2>Recommendations</h2>",
        _recommendations(content),
        "<h2>Notable associations</h2>",
        _notable(content),
        "<h2>Quality findings</h2>",
        _findings(content),
        "<h2>Charts</h2>",
    ]
    for caption, draw in all_figures(content):
        data = base64.b64encode(png(draw())).decode()
        parts.append(
            f"<figure><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _numbers(content: ReportContent) -> str:
    duration = f"{content.median_duration_seconds / 60:.1f} min" if content.median_duration_seconds else "—"
    span = f"{content.first:%Y-%m-%d} to {content.last:%Y-%m-%d}" if content.first and content.last else "—"
    items = [
        ("submissions", f"{content.submissions:,}"),
        ("enumerators", f"{content.enumerators:,}"),
        ("period", span),
        ("median interview", duration),
        ("flagged submissions", f"{content.flagged_submissions:,}"),
    ]
    return (
        "<div class='numbers'>"
        + "".join(f"<div><b>{escape(v)}</b>{escape(k)}</div>" for k, v in items)
        + "</div>"
    )


def _recommendations(content: ReportContent) -> str:
    if not content.recommendations:
        return "<p>No rule fired: nothing to recommend.</p>"
    items = "".join(
        f"<li><b>{escape(r.title)}</b>. {escape(r.action)} "
        f"<span class='why'>Because: {escape(r.because)}</span></li>"
        for r in content.recommendations
    )
    return f"<ol>{items}</ol>"


def _notable(content: ReportContent) -> str:
    screening = content.screening
    intro = (
        f"<p>{screening.tested} pairs of single-choice questions tested; shown: Benjamini-Hochberg "
        "q &lt; 0.05 and Cramér's V ≥ 0.1.</p>"
    )
    if not screening.notable:
        return intro + "<p>No notable association.</p>"
    rows = "".join(
        f"<tr><td>{escape(a.row_field)}</td><td>{escape(a.col_field)}</td><td>{a.cramers_v:.2f}</td>"
        f"<td>{a.q_value:.2g}</td><td>{escape(a.test)}</td><td>{a.n:,}</td></tr>"
        for a in screening.notable[:20]
    )
    return (
        intro
        + "<table><tr><th>question</th><th>question</th><th>Cramér's V</th>"
        + "<th>q</th><th>test</th><th>n</th></tr>"
        + rows
        + "</table>"
    )


def _findings(content: ReportContent) -> str:
    if not content.findings_by_rule:
        return "<p>No findings.</p>"
    rows = "".join(f"<tr><td>{escape(rule)}</td><td>{n:,}</td></tr>" for rule, n in content.findings_by_rule)
    return f"<table><tr><th>rule</th><th>findings</th></tr>{rows}</table>"
