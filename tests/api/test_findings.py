"""Rule findings: `required` where relevant and `constraint` where answered are evaluated when a
submission arrives and recorded with it; the submission is stored either way."""

from __future__ import annotations

import httpx
from tests.api.test_forms import XML, project, upload
from tests.conftest import Person

OR = {"X-OpenRosa-Version": "1.0"}

FORM = b"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head>
    <h:title>Rules</h:title>
    <model>
      <instance>
        <data id="rules">
          <age/><consent/><reason/><weird/>
          <member jr:template=""><mage/></member>
          <meta><instanceID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/age" type="int" required="true()" constraint=". &gt;= 0 and . &lt; 120"/>
      <bind nodeset="/data/consent" type="string" required="true()"/>
      <bind nodeset="/data/reason" type="string" required="true()" relevant="/data/consent = 'no'"/>
      <bind nodeset="/data/weird" type="string" constraint="pulldata('x', 'y', 'z', .)"/>
      <bind nodeset="/data/member/mage" type="int" constraint=". &lt;= /data/age"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/age"><label>Age</label></input>
    <input ref="/data/consent"><label>Consent</label></input>
    <input ref="/data/reason"><label>Reason</label></input>
    <input ref="/data/weird"><label>Weird</label></input>
    <repeat nodeset="/data/member"><input ref="/data/member/mage"><label>Age</label></input></repeat>
  </h:body>
</h:html>"""


def submission(
    instance_id: str, age: str, consent: str, reason: str, weird: str, members: list[str]
) -> bytes:
    repeat = "".join(f"<member><mage>{m}</mage></member>" for m in members)
    return (
        f'<data id="rules"><age>{age}</age><consent>{consent}</consent><reason>{reason}</reason>'
        f"<weird>{weird}</weird>{repeat}<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


async def post(client: httpx.AsyncClient, admin: Person, pid: int, xml: bytes) -> None:
    response = await client.post(
        f"/v1/projects/{pid}/forms/rules/submissions",
        content=xml,
        headers={**admin.auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.text


async def test_violations_and_unevaluable_rules_are_recorded(
    client: httpx.AsyncClient, admin: Person
) -> None:
    pid = await project(client, admin)
    assert (await upload(client, admin, pid, FORM, XML, publish="true")).status_code == 200
    await post(client, admin, pid, submission("uuid:bad", "130", "no", "", "x", ["5", "200"]))
    await post(client, admin, pid, submission("uuid:good", "40", "yes", "", "", ["5"]))

    data = (
        await client.get(f"/v1/projects/{pid}/forms/rules/submissions/uuid:bad/data", headers=admin.auth)
    ).json()
    found = {(f["context"], f["rule"], f["outcome"]) for f in data["findings"]}
    assert found == {
        ("/age", "constraint", "violated"),
        ("/reason", "required", "violated"),
        ("/weird", "constraint", "not-evaluated"),
        ("/member[2]/mage", "constraint", "violated"),
    }
    good = (
        await client.get(f"/v1/projects/{pid}/forms/rules/submissions/uuid:good/data", headers=admin.auth)
    ).json()
    assert good["findings"] == [], "relevance off and constraints met: nothing to report"

    listed = (await client.get(f"/v1/projects/{pid}/forms/rules/findings", headers=admin.auth)).json()
    assert {f["instanceId"] for f in listed} == {"uuid:bad"}
    assert len(listed) == 4
    violated = (
        await client.get(
            f"/v1/projects/{pid}/forms/rules/findings", params={"outcome": "violated"}, headers=admin.auth
        )
    ).json()
    assert len(violated) == 3
