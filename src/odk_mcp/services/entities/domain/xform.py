"""What a form declares about entities: the `meta/entity` block of its primary instance and
the `entities:saveto` binds (ODK XForms entities spec, versions 2022.1 to 2025.1).

Only the block in the instance's top-level `meta` is read: entities declared inside repeats
(2025.1) are reported as unsupported rather than half-processed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from odk_mcp.services.entities.domain.names import valid_dataset_name, valid_property_name

XF = "http://www.w3.org/2002/xforms"
ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
_VERSION = re.compile(r"^(\d{4})\.(\d+)(?:\.(\d+))?$")
SUPPORTED = ((2022, 1), (2025, 1))  # inclusive range of year.minor


class InvalidEntityForm(ValueError):
    """The form's entity block breaks the spec (Central's 400.25 reasons)."""


@dataclass(frozen=True)
class EntityDeclaration:
    dataset: str
    actions: tuple[str, ...]  # "create", "update"
    spec_version: str
    saveto: tuple[tuple[str, str], ...]  # (field path below the root, property)
    title: str | None


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _parent(element: etree._Element) -> etree._Element:
    parent = element.getparent()
    return parent if parent is not None else element


def _strip_root(nodeset: str, root_name: str) -> str | None:
    parts = [p for p in nodeset.split("/") if p]
    if len(parts) < 2 or parts[0] != root_name:
        return None
    return "/".join(parts[1:])


def read_entity_declaration(root: etree._Element) -> EntityDeclaration | None:
    """The form's entity declaration, None when it has none; InvalidEntityForm when broken."""
    model = next((e for e in root.iter(f"{{{XF}}}model")), None)
    if model is None:
        return None
    instance = next((e for e in model.iterchildren(f"{{{XF}}}instance") if e.get("id") is None), None)
    data = (
        next((c for c in instance.iterchildren() if isinstance(c.tag, str)), None)
        if instance is not None
        else None
    )
    if data is None:
        return None
    entity_blocks = [e for e in data.iter() if _local(e.tag) == "entity" and _local(_parent(e).tag) == "meta"]
    if not entity_blocks:
        return None
    top = [e for e in entity_blocks if _parent(_parent(e)) is data]
    if len(entity_blocks) > len(top) or len(top) > 1:
        raise InvalidEntityForm(
            "Entities declared inside repeats or groups are not supported by this server."
        )
    block = top[0]
    version = model.get(f"{{{ENTITIES_NS}}}entities-version") or ""
    match = _VERSION.match(version.strip())
    if not version:
        raise InvalidEntityForm("Entities specification version is missing.")
    if match is None or not (SUPPORTED[0] <= (int(match.group(1)), int(match.group(2))) <= SUPPORTED[1]):
        raise InvalidEntityForm(f"Entities specification version [{version[:50]}] is not supported.")
    dataset = (block.get("dataset") or "").strip()
    if not dataset:
        raise InvalidEntityForm("Dataset name is missing.")
    if not valid_dataset_name(dataset):
        raise InvalidEntityForm("Invalid dataset name.")
    actions = tuple(a for a in ("create", "update") if block.get(a) is not None)
    if not actions:
        raise InvalidEntityForm(
            "The form must specify at least one entity action, for example, create or update."
        )
    root_name = _local(data.tag)
    saveto: dict[str, str] = {}
    for bind in model.iterchildren(f"{{{XF}}}bind"):
        prop = bind.get(f"{{{ENTITIES_NS}}}saveto")
        if prop is None:
            continue
        path = _strip_root(bind.get("nodeset") or "", root_name)
        if not valid_property_name(prop.strip()):
            raise InvalidEntityForm("Invalid entity property name.")
        if path is None:
            raise InvalidEntityForm(f"The saveto bind of [{prop[:100]}] has no usable nodeset.")
        saveto[path] = prop.strip()
    if len({p.lower() for p in saveto.values()}) != len(saveto):
        raise InvalidEntityForm("Two fields save to the same entity property.")
    title = next((e.text for e in root.iter() if _local(e.tag) == "title"), None)
    return EntityDeclaration(dataset, actions, version.strip(), tuple(saveto.items()), title)
