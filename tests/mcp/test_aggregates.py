"""Aggregate and export tools through the SDK's client: summaries (sensitive questions reduced
to counts without `pii`), time series, crosstabs with small cells suppressed, free-text themes
(quotes as data, sensitive questions only with `pii`), export jobs bound to their creator with a
short-lived download link."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from odk_mcp.bootstrap import Container
from odk_mcp.services.analytics.adapters import embedding
from tests.api.test_themes import need_model
from tests.conftest import MakeUser, Person
from tests.mcp.conftest import INJECTION, Survey, TokenFor
from tests.mcp.test_tools import data, error


async def caught_up(container: Container) -> None:
    """Run the real event worker until the read model has every submission."""
    while await container.worker.drain():
        pass


async def test_summary_redacts_sensitive_questions_without_pii(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    await caught_up(container)
    args = {"projectId": survey.project_id, "xmlFormId": "household"}
    async with connect(await token_for(admin, "read")) as client:
        plain = data(await client.call_tool("summarize_form", args))
        filtered = data(await client.call_tool("summarize_form", {**args, "odataFilter": "consent eq 'no'"}))
    async with connect(await token_for(admin, "read", "pii")) as client:
        full = data(await client.call_tool("summarize_form", args))
    questions = {q["path"]: q for q in plain["questions"]}
    assert plain["submissions"] == 7 and filtered["submissions"] == 2
    assert sum(d["count"] for d in plain["submissionsPerDay"]) == 7
    assert questions["/phone"]["redacted"] is True and questions["/phone"]["answered"] == 7
    consent = questions["/consent"]
    assert "redacted" not in consent and consent["answered"] == 7
    assert "redacted" not in {q["path"]: q for q in full["questions"]}["/phone"]


async def test_timeseries_counts_submissions(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    await caught_up(container)
    async with connect(await token_for(admin, "read")) as client:
        series = data(
            await client.call_tool(
                "submission_timeseries", {"projectId": survey.project_id, "xmlFormId": "household"}
            )
        )
    assert series["total"] == 7 and sum(series["series"][0]["counts"]) == 7


async def test_crosstab_suppresses_small_cells_and_refuses_sensitive_questions_without_pii(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    await caught_up(container)
    args = {"projectId": survey.project_id, "xmlFormId": "household", "row": "/consent", "col": "/water"}
    async with connect(await token_for(admin, "read")) as client:
        table = data(await client.call_tool("crosstab", {**args, "suppressBelow": 2}))
        sensitive = await client.call_tool("crosstab", {**args, "row": "/phone"})
        other = await client.call_tool("crosstab", {**args, "projectId": survey.other_project_id})
    async with connect(await token_for(admin, "read", "pii")) as client:
        open_table = data(await client.call_tool("crosstab", {**args, "suppressBelow": 2}))
    # consent by water: yes/piped 4 (s1, s2, s4, s5), no/piped 1 (s3), no/well 1 (s6), yes/well 1 (s7).
    # Without pii the smallest cell shown is 5, whatever was asked: every cell is withheld.
    assert table["suppressBelow"] == 5 and table["n"] == 7
    assert table["counts"] == [[None, None], [None, None]] and table["suppressedCells"] == 4
    assert table["rowTotals"] == [5, 2] and table["colTotals"] == [5, 2]
    assert open_table["suppressBelow"] == 2 and open_table["suppressedCells"] == 3
    assert open_table["rows"] == ["yes", "no"] and open_table["cols"] == ["piped", "well"]
    assert open_table["counts"] == [[4, None], [None, None]]
    assert "sensitive" in error(sensitive)
    assert "404.1" in error(other) or "403.1" in error(other)


async def test_text_themes_quote_answers_as_data_and_need_pii_for_sensitive_questions(
    connect: Any, admin: Person, token_for: TokenFor, survey: Survey, container: Container
) -> None:
    need_model()
    await caught_up(container)
    args = {"projectId": survey.project_id, "xmlFormId": "household", "field": "/village_name"}
    async with connect(await token_for(admin, "submissions")) as client:
        found = data(await client.call_tool("text_themes", {**args, "quotes": 3}))
        filtered = data(await client.call_tool("text_themes", {**args, "odataFilter": "age lt 100"}))
        sensitive = await client.call_tool("text_themes", {**args, "field": "/phone"})
        not_text = await client.call_tool("text_themes", {**args, "field": "/age"})
        other = await client.call_tool("text_themes", {**args, "projectId": survey.other_project_id})
    async with connect(await token_for(admin, "read")) as client:
        no_scope = await client.call_tool("text_themes", args)
    async with connect(await token_for(admin, "submissions", "pii")) as client:
        phones = data(await client.call_tool("text_themes", {**args, "field": "/phone"}))
    # Six answers "Kibera" and one that tries to instruct an assistant (two distinct answers make
    # one theme): the planted instruction is quoted verbatim as an answer, never obeyed or dropped.
    assert found["field"] == "/village_name" and found["answers"] == 7 and found["distinct"] == 2
    assert found["totalAnswers"] == 7 and found["sampled"] is False
    [theme] = found["themes"]
    assert (theme["size"], theme["distinct"], theme["share"]) == (7, 2, 1.0)
    assert sorted((q["text"], q["count"]) for q in theme["quotes"]) == sorted([("Kibera", 6), (INJECTION, 1)])
    # Ages 150 and "unknown" (not a number) are filtered out: five answers, all "Kibera" but one.
    assert filtered["answers"] == 5
    assert "sensitive" in error(sensitive) and "pii" in error(sensitive)
    assert "400.61" in error(not_text)
    assert "404.1" in error(other) or "403.1" in error(other)
    assert "insufficient_scope" in error(no_scope) and "submissions" in error(no_scope)
    assert phones["answers"] == 7 and phones["distinct"] == 7


async def test_text_themes_without_the_model_say_how_to_install_it(
    connect: Any,
    admin: Person,
    token_for: TokenFor,
    survey: Survey,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real availability check, looking for a model package that does not exist.
    monkeypatch.setattr(embedding, "MODEL_PACKAGE", "odk_mcp_no_such_model_package")
    args = {"projectId": survey.project_id, "xmlFormId": "household", "field": "/village_name"}
    async with connect(await token_for(admin, "submissions")) as client:
        missing = error(await client.call_tool("text_themes", args))
    assert "501.61" in missing
    body = json.loads(missing[missing.index("{") :])
    assert body["details"] == {"missing": "odk_mcp_no_such_model_package", "install": embedding.INSTALL_HINT}


async def test_an_export_job_is_bound_to_its_creator_and_downloads_by_a_short_lived_link(
    connect: Any,
    admin: Person,
    make_user: MakeUser,
    token_for: TokenFor,
    survey: Survey,
    container: Container,
    client: httpx.AsyncClient,
) -> None:
    await caught_up(container)
    args = {"projectId": survey.project_id, "xmlFormId": "household", "format": "csv"}
    async with connect(await token_for(admin, "submissions")) as mcp:
        refused = await mcp.call_tool("start_export", args)
    assert "insufficient_scope" in error(refused) and "pii" in error(refused)
    async with connect(await token_for(admin, "submissions", "pii")) as mcp:
        started = data(await mcp.call_tool("start_export", args))
        assert started["status"] == "queued" and started["total"] == 7 and started["downloadUrl"] is None
        assert await container.exports.jobs.run_one()
        done = data(await mcp.call_tool("get_export", {"handle": started["handle"]}))
    assert done["status"] == "done" and done["downloadUrl"]
    url = urlsplit(done["downloadUrl"])
    fetched = await client.get(url.path)
    assert fetched.status_code == 200 and b"uuid:s001" in fetched.content
    assert (await client.get(url.path[:-6] + "AAAAAA")).status_code == 404
    stranger = await make_user()
    async with connect(await token_for(stranger, "submissions", "pii")) as mcp:
        assert "404.1" in error(await mcp.call_tool("get_export", {"handle": started["handle"]}))
