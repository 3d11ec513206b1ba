"""pyODK's entity_lists and entities APIs against the real server over real HTTP, including
`entities.merge` (add properties, insert, update, delete unmatched) and the OData table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyodk.client import Client
from pyodk.errors import PyODKError
from tests.compat.test_pyodk import Central, central, write_config

__all__ = ["central"]  # the module-scoped live server fixture, shared with test_pyodk.py


@pytest.fixture
def client(central: Central, tmp_path: Path) -> Iterator[Client]:
    project_id = central.create_project("pyODK entities")
    config = write_config(tmp_path / "pyodk_config.toml", central, project_id=project_id)
    with Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml") as opened:
        yield opened


def test_entity_lists_create_get_list_and_add_property(client: Client) -> None:
    created = client.entity_lists.create(entity_list_name="sites", approval_required=True)
    assert created.name == "sites" and created.approvalRequired is True
    assert client.entity_lists.add_property(name="district", entity_list_name="sites") is True
    got = client.entity_lists.get(entity_list_name="sites")
    assert got.properties is not None and [p.name for p in got.properties] == ["district"]
    assert [e.name for e in client.entity_lists.list()] == ["sites"]
    with pytest.raises(PyODKError, match=r"400\.8"):
        client.entity_lists.add_property(name="label", entity_list_name="sites")


def test_entities_create_update_delete_and_table(client: Client) -> None:
    client.entity_lists.create(entity_list_name="people")
    client.entity_lists.add_property(name="age", entity_list_name="people")
    entity = client.entities.create(label="Ada", data={"age": "36"}, entity_list_name="people")
    assert entity.currentVersion.version == 1 and entity.currentVersion.data == {"age": "36"}
    updated = client.entities.update(
        uuid=entity.uuid, entity_list_name="people", data={"age": "37"}, base_version=1
    )
    assert updated.currentVersion.version == 2 and updated.currentVersion.baseVersion == 1
    with pytest.raises(PyODKError, match=r"409\.15"):
        client.entities.update(uuid=entity.uuid, entity_list_name="people", label="Ada L.", base_version=1)
    forced = client.entities.update(uuid=entity.uuid, entity_list_name="people", label="Ada L.", force=True)
    assert forced.currentVersion.label == "Ada L."
    assert client.entities.create_many(
        [{"label": "Grace", "age": "45"}, {"label": "Alan", "age": "41"}], entity_list_name="people"
    )
    listed = client.entities.list(entity_list_name="people")
    assert sorted(e.currentVersion.label for e in listed) == ["Ada L.", "Alan", "Grace"]
    table = client.entities.get_table(entity_list_name="people", count=True, top=2, filter="age gt 40")
    assert table["@odata.count"] == 2 and len(table["value"]) == 2
    assert {row["label"] for row in table["value"]} == {"Grace", "Alan"}
    assert client.entities.delete(uuid=entity.uuid, entity_list_name="people") is True
    assert len(client.entities.list(entity_list_name="people")) == 2


def test_merge_adds_properties_inserts_updates_and_deletes(client: Client) -> None:
    client.entity_lists.create(entity_list_name="towns")
    client.entities.merge(
        [{"label": "Sydney", "state": "NSW"}, {"label": "Melbourne", "state": "VIC"}],
        entity_list_name="towns",
    )
    actions = client.entities.merge(
        [
            {"label": "Sydney", "state": "NSW", "postcode": "2000"},
            {"label": "Brisbane", "state": "QLD", "postcode": "4000"},
        ],
        entity_list_name="towns",
        delete_not_matched=True,
    )
    assert set(actions.to_insert) == {("Brisbane",)} and set(actions.to_delete) == {("Melbourne",)}
    rows = client.entities.get_table(entity_list_name="towns")["value"]
    by_label = {row["label"]: row for row in rows}
    assert set(by_label) == {"Sydney", "Brisbane"}
    assert by_label["Sydney"]["postcode"] == "2000" and by_label["Sydney"]["__system"]["version"] == 2
    assert by_label["Brisbane"] | {"__id": "", "__system": {}} == {
        "__id": "",
        "__system": {},
        "label": "Brisbane",
        "state": "QLD",
        "postcode": "4000",
    }
    properties = client.entity_lists.get(entity_list_name="towns").properties
    assert properties is not None and sorted(p.name for p in properties) == ["postcode", "state"]
