"""The insight report facade: one scan of the form's data, rendered as HTML or PDF."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from odk_mcp.kernel.actor import Actor
from odk_mcp.services.analytics.loading import FormFrames
from odk_mcp.services.analytics.progress import Progress, in_thread
from odk_mcp.services.analytics.quality import Quality

MEDIA_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


class Reports:
    def __init__(self, frames: FormFrames, quality: Quality) -> None:
        self._frames = frames
        self._quality = quality

    async def render(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        kind: Literal["html", "pdf"],
        progress: Progress | None = None,
    ) -> bytes:
        form = await self._frames.form(actor, project_id, xml_form_id)
        config = await self._quality.config_for(actor, form)
        if progress is not None:
            progress("loading", 0, None)
        data = await self._frames.load(form)
        title = form.schema.title if form.schema is not None else xml_form_id

        def work() -> bytes:
            # matplotlib and scikit-learn load on the first report, not with the server, and
            # in this thread: importing them takes seconds the event loop must not wait.
            from odk_mcp.services.analytics.domain.quality.scan import STEPS, scan
            from odk_mcp.services.analytics.report.content import build
            from odk_mcp.services.analytics.report.html import render_html
            from odk_mcp.services.analytics.report.pdf import render_pdf

            checked = scan(data.frame, data.fields, config, progress)
            if progress is not None:
                progress("rendering", len(STEPS), len(STEPS) + 1)
            content = build(title, xml_form_id, data.frame, data.fields, checked, datetime.now(UTC))
            return render_html(content).encode() if kind == "html" else render_pdf(content)

        return await in_thread(work)
