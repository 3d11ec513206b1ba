"""What a form declares about entities: the `meta/entity` blocks of its primary instance and
the `entities:saveto` binds (ODK XForms entities spec, versions 2022.1 to 2025.1).

A form may declare one block in the instance's top-level `meta`, and (from 2025.1) more in the
`meta` of repeats and groups: each repeat instance of a submission then creates or updates one
entity, and one form may feed several lists. A `saveto` field belongs to the block of the
nearest container that holds it.
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
NESTED_FROM = (2025, 1)  # blocks below the top level need this spec version


class InvalidEntityForm(ValueError):
    """The form's entity block breaks the spec (Central's 400.25 reasons)."""


@dataclass(frozen=True)
class EntityDeclaration:
    dataset: str
    actions: tuple[str, ...]  # "create", "update"
    spec_version: str
    saveto: tuple[tuple[str, str], ...]  # (field path below the root, property)
    title: str | None
    path: str = ""  # the container holding the block, below the root ("" = the top level)


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


def _container_path(block: etree._Element, data: etree._Element) -> str:
    names: list[str] = []
    node = _parent(_parent(block))  # entity -> meta -> container
    while node is not data and node.getparent() is not None:
        names.append(_local(node.tag))
        node = _parent(node)
    return "/".join(reversed(names))


def _owner(field: str, paths: list[str]) -> str | None:
    """The declaration path a saveto field belongs to: the longest one that contains it."""
    inside = [p for p in paths if p == "" or field.startswith(p + "/")]
    return max(inside, key=len) if inside else None


def read_entity_declarations(root: etree._Element) -> list[EntityDeclaration]:
    """The form's entity declarations (none when it has none); InvalidEntityForm when broken."""
    model = next((e for e in root.iter(f"{{{XF}}}model")), None)
    if model is None:
        return []
    instance = next((e for e in model.iterchildren(f"{{{XF}}}instance") if e.get("id") is None), None)
    data = (
        next((c for c in instance.iterchildren() if isinstance(c.tag, str)), None)
        if instance is not None
        else None
    )
    if data is None:
        return []
    blocks: dict[str, etree._Element] = {}
    for block in data.iter():
        if _local(block.tag) == "entity" and _local(_parent(block).tag) == "meta":
            # A repeat's template and its first instance carry the same block: keep one.
            blocks.setdefault(_container_path(block, data), block)
    if not blocks:
        return []
    version = model.get(f"{{{ENTITIES_NS}}}entities-version") or ""
    match = _VERSION.match(version.strip())
    if not version:
        raise InvalidEntityForm("Entities specification version is missing.")
    if match is None or not (SUPPORTED[0] <= (int(match.group(1)), int(match.group(2))) <= SUPPORTED[1]):
        raise InvalidEntityForm(f"Entities specification version [{version[:50]}] is not supported.")
    if any(path != "" for path in blocks) and (int(match.group(1)), int(match.group(2))) < NESTED_FROM:
        raise InvalidEntityForm(
            "Entities declared inside repeats or groups need entities-version 2025.1 or later."
        )
    root_name = _local(data.tag)
    saveto: dict[str, dict[str, str]] = {path: {} for path in blocks}
    for bind in model.iterchildren(f"{{{XF}}}bind"):
        prop = bind.get(f"{{{ENTITIES_NS}}}saveto")
        if prop is None:
            continue
        field = _strip_root(bind.get("nodeset") or "", root_name)
        if not valid_property_name(prop.strip()):
            raise InvalidEntityForm("Invalid entity property name.")
        if field is None:
            raise InvalidEntityForm(f"The saveto bind of [{prop[:100]}] has no usable nodeset.")
        owner = _owner(field, list(blocks))
        if owner is None:
            raise InvalidEntityForm(
                f"The field [{field[:200]}] saves to [{prop[:100]}] but is outside every entity's repeat."
            )
        saveto[owner][field] = prop.strip()
    title = next((e.text for e in root.iter() if _local(e.tag) == "title"), None)
    declarations = []
    for path, block in sorted(blocks.items()):
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
        fields = saveto[path]
        if len({p.lower() for p in fields.values()}) != len(fields):
            raise InvalidEntityForm("Two fields save to the same entity property.")
        declarations.append(
            EntityDeclaration(dataset, actions, version.strip(), tuple(fields.items()), title, path)
        )
    return declarations
