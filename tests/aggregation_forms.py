"""A household survey using the question types and nesting the read side must handle (groups,
a repeat inside a group, a repeat inside that repeat, selects, numbers, dates, a geopoint),
its submissions, and helpers to set it up over HTTP and let the event worker catch up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from odk_mcp.bootstrap import Container
from tests.conftest import Person

XML = {"Content-Type": "application/xml"}


def household_form(version: str = "1", *, v2: bool = False) -> bytes:
    """Version 1, or a version 2 that drops `income`, adds `water` and retypes `size` to text."""
    extra_instance = "<water/>" if v2 else "<income/>"
    size_type = "string" if v2 else "int"
    extra_bind = (
        '<bind nodeset="/data/water" type="string"/>'
        if v2
        else '<bind nodeset="/data/income" type="decimal"/>'
    )
    extra_body = (
        '<input ref="/data/water"><label>Water source</label></input>'
        if v2
        else '<input ref="/data/income"><label>Income</label></input>'
    )
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head>
    <h:title>Household</h:title>
    <model>
      <instance>
        <data id="household" version="{version}">
          <hh_name/><region/><size/>{extra_instance}<visit_date/><started/><location/><assets/>
          <grp><note-text/><consent/></grp>
          <hh>
            <member jr:template=""><mname/><mage/><visit jr:template=""><vdate/></visit></member>
          </hh>
          <meta><instanceID/><deprecatedID/></meta>
        </data>
      </instance>
      <bind nodeset="/data/hh_name" type="string"/>
      <bind nodeset="/data/region" type="string"/>
      <bind nodeset="/data/size" type="{size_type}"/>
      {extra_bind}
      <bind nodeset="/data/visit_date" type="date"/>
      <bind nodeset="/data/started" type="dateTime"/>
      <bind nodeset="/data/location" type="geopoint"/>
      <bind nodeset="/data/assets" type="string"/>
      <bind nodeset="/data/grp/note-text" type="string"/>
      <bind nodeset="/data/grp/consent" type="string"/>
      <bind nodeset="/data/hh/member/mname" type="string"/>
      <bind nodeset="/data/hh/member/mage" type="int"/>
      <bind nodeset="/data/hh/member/visit/vdate" type="date"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/data/hh_name"><label>Household name</label></input>
    <select1 ref="/data/region"><label>Region</label>
      <item><label>North</label><value>north</value></item>
      <item><label>South</label><value>south</value></item>
    </select1>
    <input ref="/data/size"><label>Size</label></input>
    {extra_body}
    <input ref="/data/visit_date"><label>Visit date</label></input>
    <input ref="/data/started"><label>Started</label></input>
    <input ref="/data/location"><label>Location</label></input>
    <select ref="/data/assets"><label>Assets</label>
      <item><label>Radio</label><value>radio</value></item>
      <item><label>TV</label><value>tv</value></item>
      <item><label>Car</label><value>car</value></item>
    </select>
    <group ref="/data/grp"><label>Group</label>
      <input ref="/data/grp/note-text"><label>Note</label></input>
      <select1 ref="/data/grp/consent"><label>Consent</label>
        <item><label>Yes</label><value>yes</value></item>
        <item><label>No</label><value>no</value></item>
      </select1>
    </group>
    <group ref="/data/hh"><label>Members</label>
      <repeat nodeset="/data/hh/member">
        <input ref="/data/hh/member/mname"><label>Name</label></input>
        <input ref="/data/hh/member/mage"><label>Age</label></input>
        <repeat nodeset="/data/hh/member/visit">
          <input ref="/data/hh/member/visit/vdate"><label>Visit</label></input>
        </repeat>
      </repeat>
    </group>
  </h:body>
</h:html>""".encode()


@dataclass
class Household:
    instance_id: str
    name: str = "Ada"
    region: str = "north"
    size: str = "4"
    income: str = "1250.5"
    water: str | None = None
    visit_date: str = "2024-03-01"
    started: str = "2024-03-01T09:30:00.000+02:00"
    location: str = "-1.2921 36.8219 1795 5"
    assets: str = "radio tv"
    note: str = "fine"
    consent: str = "yes"
    members: list[tuple[str, str, list[str]]] = field(
        default_factory=lambda: [("Bo", "30", ["2024-01-01", "2024-02-01"]), ("Cy", "7", [])]
    )
    version: str = "1"
    deprecated: str | None = None

    def xml(self) -> bytes:
        members = "".join(
            f"<member><mname>{n}</mname><mage>{a}</mage>"
            + "".join(f"<visit><vdate>{d}</vdate></visit>" for d in visits)
            + "</member>"
            for n, a, visits in self.members
        )
        extra = (
            f"<water>{self.water}</water>" if self.water is not None else f"<income>{self.income}</income>"
        )
        dep = f"<deprecatedID>{self.deprecated}</deprecatedID>" if self.deprecated else ""
        return (
            f'<data id="household" version="{self.version}"><hh_name>{self.name}</hh_name>'
            f"<region>{self.region}</region><size>{self.size}</size>{extra}"
            f"<visit_date>{self.visit_date}</visit_date><started>{self.started}</started>"
            f"<location>{self.location}</location><assets>{self.assets}</assets>"
            f"<grp><note-text>{self.note}</note-text><consent>{self.consent}</consent></grp>"
            f"<hh>{members}</hh><meta><instanceID>{self.instance_id}</instanceID>{dep}</meta></data>"
        ).encode()


async def subscribe(container: Container) -> None:
    """What `open_container` does at start: the read model's consumer subscribes to events."""
    await container.consumers.sync(container.db)


async def create_project(client: httpx.AsyncClient, admin: Person, name: str = "Households") -> int:
    response = await client.post("/v1/projects", json={"name": name}, headers=admin.auth)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


async def publish_household(client: httpx.AsyncClient, admin: Person, pid: int) -> None:
    response = await client.post(
        f"/v1/projects/{pid}/forms",
        content=household_form(),
        params={"publish": "true"},
        headers={**admin.auth, **XML},
    )
    assert response.status_code == 200, response.text


async def publish_v2(client: httpx.AsyncClient, admin: Person, pid: int) -> None:
    base = f"/v1/projects/{pid}/forms/household"
    draft = await client.post(
        base + "/draft", content=household_form("2", v2=True), headers={**admin.auth, **XML}
    )
    assert draft.status_code == 200, draft.text
    published = await client.post(base + "/draft/publish", headers=admin.auth)
    assert published.status_code == 200, published.text


async def submit(
    client: httpx.AsyncClient, auth: dict[str, str], pid: int, household: Household, draft: bool = False
) -> httpx.Response:
    base = f"/v1/projects/{pid}/forms/household" + ("/draft" if draft else "")
    response = await client.post(base + "/submissions", content=household.xml(), headers={**auth, **XML})
    assert response.status_code == 200, response.text
    return response


async def edit(client: httpx.AsyncClient, auth: dict[str, str], pid: int, household: Household) -> None:
    assert household.deprecated is not None
    original = household.deprecated
    base = f"/v1/projects/{pid}/forms/household/submissions/{original}"
    response = await client.put(base, content=household.xml(), headers={**auth, **XML})
    assert response.status_code == 200, response.text


async def catch_up(container: Container) -> int:
    """Run the real event worker until every due delivery is processed; fail on a failed one."""
    processed = await container.worker.drain()
    async with container.db.read() as conn:
        failed = (
            await conn.execute(
                text("SELECT consumer, last_error FROM events.deliveries WHERE status <> 'done'")
            )
        ).all()
    assert not failed, failed
    return processed


async def read_model(container: Container) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every row of both read-model tables, in a stable order, without the event bookkeeping
    (nor the change stamp the columnar cache reads: every write renews it)."""
    async with container.db.read() as conn:
        roots = (await conn.execute(text("SELECT * FROM aggregation.rows ORDER BY submission_id"))).mappings()
        root_rows = [{k: v for k, v in r.items() if k not in ("event_id", "change_xid")} for r in roots]
        repeats = (
            await conn.execute(
                text("SELECT * FROM aggregation.repeat_rows ORDER BY submission_id, repeat_path, seq")
            )
        ).mappings()
        return root_rows, [dict(r) for r in repeats]
