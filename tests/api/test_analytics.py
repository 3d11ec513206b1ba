"""The analytics API over real HTTP, PostgreSQL and the event worker: statistics match the
domain (and statsmodels/samplics) on the very rows submitted, `$filter` narrows them,
permissions hold, quality findings are stored, listed, dismissed (audited) and checked
incrementally on new submissions, and the report renders."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from PIL import Image
from sqlalchemy import text
from statsmodels.stats.contingency_tables import Table
from tests.aggregation_forms import catch_up, subscribe
from tests.analytics_forms import FORM_ID, XML, publish_survey, submission_xml, submit_rows
from tests.conftest import MakeUser, Person

from odk_mcp.bootstrap import Container
from odk_mcp.services.analytics.synthetic import survey

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from samplics.estimation import TaylorEstimator
    from samplics.utils.types import PopParam


async def loaded(
    client: httpx.AsyncClient, container: Container, admin: Person, n: int = 120
) -> tuple[int, pl.DataFrame]:
    await subscribe(container)
    pid = await publish_survey(client, admin)
    frame, _ = survey(n, enumerators=4, seed=5)
    await submit_rows(client, admin.auth, pid, frame)
    await catch_up(container)
    return pid, frame


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Reports take seconds even on small forms (charts); on a loaded test machine that can
    # pass the default wait, and these tests are about the answers, not the wait.
    return {"analytics_wait_seconds": 300}


def base(pid: int) -> str:
    return f"/v1/projects/{pid}/forms/{FORM_ID}/analytics"


async def test_statistics_over_http_match_independent_computations_on_the_submitted_rows(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, frame = await loaded(client, container, admin)
    response = await client.get(
        base(pid) + "/crosstab", params={"row": "/region", "col": "/has_phone"}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    observed = np.array(
        [
            [
                frame.filter((pl.col("/region") == r) & (pl.col("/has_phone") == c)).height
                for c in body["cols"]
            ]
            for r in body["rows"]
        ]
    )
    assert body["counts"] == observed.tolist() and body["n"] == frame.height
    reference = Table(observed).test_nominal_association()
    assert body["test"]["name"] == "chi2"
    assert body["test"]["statistic"] == pytest.approx(reference.statistic)

    older = frame.filter(pl.col("/age") >= 50)
    filtered = await client.get(
        base(pid) + "/crosstab",
        params={"row": "/region", "col": "/sex", "$filter": "age ge 50"},
        headers=admin.auth,
    )
    assert filtered.status_code == 200, filtered.text
    assert filtered.json()["n"] == older.height

    response = await client.get(
        base(pid) + "/estimate",
        params={"field": "/income", "weights": "/weight", "strata": "/region", "clusters": "/village"},
        headers=admin.auth,
    )
    assert response.status_code == 200, response.text
    (est,) = response.json()["estimates"]
    reference_mean = TaylorEstimator(PopParam.mean)
    psu = (frame["/region"] + ":" + frame["/village"].cast(pl.String)).to_numpy()
    reference_mean.estimate(
        y=frame["/income"].to_numpy(),
        samp_weight=frame["/weight"].to_numpy(),
        stratum=frame["/region"].to_numpy(),
        psu=psu,
    )
    assert est["estimate"] == pytest.approx(reference_mean.point_est, rel=1e-9)
    assert est["se"] == pytest.approx(reference_mean.stderror, abs=1e-6)

    compare = await client.get(
        base(pid) + "/compare", params={"value": "/age", "group": "/sex"}, headers=admin.auth
    )
    assert compare.status_code == 200 and compare.json()["n"] == frame.height
    correlate = await client.get(
        base(pid) + "/correlate", params={"fields": "/age,/income,/household_size"}, headers=admin.auth
    )
    assert correlate.status_code == 200 and len(correlate.json()["correlations"]) == 3
    series = await client.get(base(pid) + "/timeseries", params={"interval": "week"}, headers=admin.auth)
    assert series.status_code == 200 and series.json()["total"] == frame.height


async def test_analytics_are_permission_checked_and_bad_requests_are_clear(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    pid, frame = await loaded(client, container, admin, n=30)
    stranger = await make_user()
    params = {"row": "/region", "col": "/sex"}
    assert (await client.get(base(pid) + "/crosstab", params=params)).status_code == 401
    denied = await client.get(base(pid) + "/crosstab", params=params, headers=stranger.auth)
    assert denied.status_code == 403 and denied.json()["code"] == 403.1
    missing = await client.get(
        f"/v1/projects/{pid}/forms/nope/analytics/crosstab", params=params, headers=admin.auth
    )
    assert missing.status_code == 404 and missing.json()["code"] == 404.1
    unknown = await client.get(
        base(pid) + "/crosstab", params={"row": "/nope", "col": "/sex"}, headers=admin.auth
    )
    assert unknown.status_code == 400 and unknown.json()["code"] == 400.61
    assert unknown.json()["details"]["reason"] == "unknownField"
    numeric = await client.get(
        base(pid) + "/crosstab", params={"row": "/age", "col": "/sex"}, headers=admin.auth
    )
    assert numeric.status_code == 400 and numeric.json()["details"]["reason"] == "wrongFieldKind"
    hostile = await client.get(
        base(pid) + "/crosstab",
        params={"row": "/region'; DROP TABLE aggregation.rows; --", "col": "/sex"},
        headers=admin.auth,
    )
    assert hostile.status_code == 400
    bad_filter = await client.get(
        base(pid) + "/crosstab", params={**params, "$filter": "region eq"}, headers=admin.auth
    )
    assert bad_filter.status_code == 400
    bad_confidence = await client.get(
        base(pid) + "/estimate", params={"field": "/age", "confidence": "2"}, headers=admin.auth
    )
    assert bad_confidence.status_code == 400
    async with container.db.read() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM aggregation.rows"))
        ).scalar_one() == frame.height


async def test_quality_findings_are_stored_listed_dismissed_and_checked_incrementally(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, frame = await loaded(client, container, admin)
    await client.put(f"/v1/projects/{pid}/analytics/area", json={"box": [30, -5, 35, 0]}, headers=admin.auth)
    scan = await client.post(base(pid) + "/quality", headers=admin.auth)
    assert scan.status_code == 200, scan.text
    by_rule = scan.json()["byRule"]
    assert (
        by_rule.get("speeding", 0) >= 2
        and by_rule.get("gps_outside_area", 0) >= 2
        and by_rule.get("duplicate", 0) >= 1
    )

    listed = (
        await client.get(base(pid) + "/quality", params={"rule": "speeding"}, headers=admin.auth)
    ).json()
    assert listed["total"] == by_rule["speeding"]
    finding = listed["findings"][0]
    assert finding["source"] == "scan" and finding["evidence"]["median_seconds"] > 0
    # Submission ids in the API are the server's; find this finding's submission among them.
    one = (
        await client.get(
            base(pid) + "/quality", params={"submissionId": finding["submissionId"]}, headers=admin.auth
        )
    ).json()
    assert any(f["id"] == finding["id"] for f in one["findings"])

    refused = await client.post(
        base(pid) + f"/quality/findings/{finding['id']}/dismissal", json={"comment": "  "}, headers=admin.auth
    )
    assert refused.status_code == 400
    dismissed = await client.post(
        base(pid) + f"/quality/findings/{finding['id']}/dismissal",
        json={"comment": "short form for a child"},
        headers=admin.auth,
    )
    assert dismissed.status_code == 200 and dismissed.json()["dismissalComment"] == "short form for a child"
    after = (await client.get(base(pid) + "/quality", params={"rule": "speeding"}, headers=admin.auth)).json()
    assert after["total"] == listed["total"] - 1
    with_dismissed = await client.get(
        base(pid) + "/quality", params={"rule": "speeding", "includeDismissed": "true"}, headers=admin.auth
    )
    assert with_dismissed.json()["total"] == listed["total"]
    audits = (
        await client.get("/v1/audits", params={"action": "analytics.finding.dismiss"}, headers=admin.auth)
    ).json()
    assert any(a["details"].get("comment") == "short form for a child" for a in audits)
    # A rescan keeps the dismissal.
    await client.post(base(pid) + "/quality", headers=admin.auth)
    again = (await client.get(base(pid) + "/quality", params={"rule": "speeding"}, headers=admin.auth)).json()
    assert again["total"] == listed["total"] - 1
    missing = await client.post(
        base(pid) + "/quality/findings/999999/dismissal", json={"comment": "x"}, headers=admin.auth
    )
    assert missing.status_code == 404

    # A new straight-lined interview, far outside the area, is flagged by the event consumer.
    row = frame.row(0, named=True) | {f"/q{i}": "5" for i in range(1, 9)}
    row |= {"instance_id": "uuid:new-straight-liner", "/location": "9.5 21.0 1200 5"}
    response = await client.post(
        f"/v1/projects/{pid}/forms/{FORM_ID}/submissions",
        content=submission_xml(row),
        headers={**admin.auth, **XML},
    )
    assert response.status_code == 200, response.text
    await catch_up(container)
    async with container.db.read() as conn:
        new_id = (
            await conn.execute(
                text(
                    "SELECT submission_id FROM aggregation.rows WHERE instance_id = 'uuid:new-straight-liner'"
                )
            )
        ).scalar_one()
    flagged = (
        await client.get(base(pid) + "/quality", params={"submissionId": new_id}, headers=admin.auth)
    ).json()
    rules = {f["rule"]: f["source"] for f in flagged["findings"]}
    assert rules.get("straightlining") == "incremental" and rules.get("gps_outside_area") == "incremental"

    enumerators = (await client.get(base(pid) + "/enumerators", headers=admin.auth)).json()
    assert sum(e["interviews"] for e in enumerators["enumerators"]) == frame.height + 1


async def test_reports_render_with_charts_and_a_pdf(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    pid, _ = await loaded(client, container, admin, n=80)
    html = await client.get(base(pid) + "/report.html", headers=admin.auth)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html.text)
    assert len(images) >= 10
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            assert image.width > 0 and image.height > 0
    assert "Recommendations" in html.text and "Notable associations" in html.text
    pdf = await client.get(base(pid) + "/report.pdf", headers=admin.auth)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and pdf.content.rstrip().endswith(b"%%EOF")


async def test_report_command_writes_html_and_pdf(
    client: httpx.AsyncClient, container: Container, admin: Person, database_url: str, tmp_path: Path
) -> None:
    pid, _ = await loaded(client, container, admin, n=40)
    env = {**os.environ, "ODK_MCP_DATABASE_URL": database_url, "ODK_MCP_DATA_DIR": str(tmp_path / "cli")}

    def report(out: Path) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "odk_mcp",
            "report",
            "--project",
            str(pid),
            "--form",
            FORM_ID,
            "--out",
            str(out),
        ]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)

    for name in ("report.html", "report.pdf"):
        done = report(tmp_path / name)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") >= 10
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    refused = report(tmp_path / "report.txt")
    assert refused.returncode != 0 and ".html or .pdf" in refused.stderr + refused.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "odk_mcp",
            "report",
            "--project",
            str(pid),
            "--form",
            "nope",
            "--out",
            str(tmp_path / "x.html"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert missing.returncode != 0 and "404.1" in missing.stderr + missing.stdout
