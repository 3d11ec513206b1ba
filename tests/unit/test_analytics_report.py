"""The insight report in a real browser and a real PDF reader: headless Chromium loads the
HTML and every chart decodes to a non-empty image; poppler reads the PDF's pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import in_ci

from odk_mcp.services.analytics.domain.fields import FieldIndex
from odk_mcp.services.analytics.domain.quality.findings import Area, QualityConfig
from odk_mcp.services.analytics.domain.quality.scan import scan
from odk_mcp.services.analytics.report.content import ReportContent, build
from odk_mcp.services.analytics.report.html import render_html
from odk_mcp.services.analytics.report.pdf import render_pdf
from odk_mcp.services.analytics.synthetic import AREA_BOX, survey, survey_fields

# Appended by the test only: reports each image's decode state once the page has loaded.
PROBE = """<script>
window.addEventListener('load', () => {
  const sizes = [...document.images].map(i => `${i.complete}:${i.naturalWidth}x${i.naturalHeight}`);
  document.body.setAttribute('data-sizes', sizes.join(','));
});
</script>"""


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if in_ci():
            pytest.fail(f"{name} is needed (Debian package chromium / poppler-utils)")
        pytest.skip(f"{name} is not installed")
    return found


@pytest.fixture(scope="module")
def content() -> ReportContent:
    frame, _ = survey(1500, seed=9)
    fields = FieldIndex.of(survey_fields())
    quality = scan(frame, fields, QualityConfig(area=Area(box=AREA_BOX)))
    return build("Household survey", "survey", frame, fields, quality, datetime(2026, 4, 1, tzinfo=UTC))


def test_chromium_renders_every_chart_of_the_html_report(content: ReportContent, tmp_path: Path) -> None:
    chromium = tool("chromium")
    html = render_html(content)
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    match = re.search(r'data-sizes="([^"]*)"', result.stdout)
    assert match, result.stdout[-2000:]
    sizes = match.group(1).split(",")
    assert len(sizes) == html.count("<img") >= 10
    for size in sizes:
        complete, dims = size.split(":")
        width, height = (int(v) for v in dims.split("x"))
        assert complete == "true" and width > 0 and height > 0
    assert "Back-check enumerator" in html  # the planted fabricator is recommended for back-checks


def test_the_pdf_report_opens_in_a_pdf_reader(content: ReportContent, tmp_path: Path) -> None:
    pdfinfo = tool("pdfinfo")
    path = tmp_path / "report.pdf"
    path.write_bytes(render_pdf(content))
    info = subprocess.run([pdfinfo, str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    assert pages >= 10
    assert "Household survey" in info
    text = subprocess.run(
        [tool("pdftotext"), str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Recommendations" in text and "Notable associations" in text
