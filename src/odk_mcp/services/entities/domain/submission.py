"""The entities a submission asks for: each `meta/entity` block of a declared container (the
top level, or every instance of a repeat) with the values of the fields the form saves to
entity properties. Pure: works on the parsed submission XML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lxml import etree

from odk_mcp.kernel.problems import Problem
from odk_mcp.services.entities.domain.payloads import parse_uuid

TRUE = ("1", "true")


class EntityRequestError(ValueError):
    """What the submission's entity block gets wrong (recorded with the submission's outcome)."""


@dataclass(frozen=True)
class EntityRequest:
    dataset: str
    uuid: str
    create: bool
    update: bool
    label: str | None
    data: dict[str, str]
    base_version: int | None
    trunk_version: int | None
    branch_id: str | None
    path: str = ""  # the declaration's container ("" = top level)
    position: int = 1  # which instance of the container (1-based), for messages


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent.iterchildren() if _local(c.tag) == name), None)


def _int(value: str | None, name: str) -> int | None:
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit() or len(value.strip()) > 9:
        raise EntityRequestError(f"{name} [{value[:20]}] is not a whole number.")
    return int(value)


def _uuid(value: str, name: str) -> str:
    try:
        return parse_uuid(value)
    except Problem as exc:
        raise EntityRequestError(f"{name} [{value[:60]}] is not a valid UUID.") from exc


def _instances(root: etree._Element, path: str) -> list[etree._Element]:
    """Every instance of the container at `path` (several per repeat level)."""
    nodes = [root]
    for part in path.split("/") if path else []:
        nodes = [c for n in nodes for c in n.iterchildren() if _local(c.tag) == part]
    return nodes


def read_entity_requests(
    root: etree._Element, path: str, saveto: Sequence[tuple[str, str]]
) -> list[EntityRequest]:
    """The entity requests of one declaration: one per instance of its container that asks
    for an action. An unusable block raises EntityRequestError naming the instance."""
    prefix = f"{path}/" if path else ""
    relative = [(field.removeprefix(prefix), prop) for field, prop in saveto]
    out = []
    for position, node in enumerate(_instances(root, path), start=1):
        try:
            request = read_entity_request(node, relative)
        except EntityRequestError as exc:
            where = f"Entity {position} of /{path}/: " if path else ""
            raise EntityRequestError(f"{where}{exc}") from exc
        if request is not None:
            out.append(replace(request, path=path, position=position))
    return out


def read_entity_request(root: etree._Element, saveto: Sequence[tuple[str, str]]) -> EntityRequest | None:
    """The entity block in the `meta` of `root` (a submission, or one repeat instance of it);
    None when it asks for no entity action."""
    meta = _child(root, "meta")
    block = _child(meta, "entity") if meta is not None else None
    if block is None:
        return None
    create = (block.get("create") or "").strip().lower() in TRUE
    update = (block.get("update") or "").strip().lower() in TRUE
    if not create and not update:
        return None
    raw_id = (block.get("id") or "").strip()
    if not raw_id:
        raise EntityRequestError("ID empty or missing.")
    try:
        uuid = parse_uuid(raw_id)
    except Exception as exc:
        raise EntityRequestError(f"ID [{raw_id[:60]}] is not a valid UUID.") from exc
    label_node = _child(block, "label")
    label = (label_node.text or "") if label_node is not None else None
    data: dict[str, str] = {}
    for path, prop in saveto:
        node: etree._Element | None = root
        for part in path.split("/"):
            node = _child(node, part) if node is not None else None
        if node is not None:
            data[prop] = node.text or ""
    raw_branch = (block.get("branchId") or "").strip()
    branch = _uuid(raw_branch, "branchId") if raw_branch else None
    return EntityRequest(
        dataset=(block.get("dataset") or "").strip(),
        uuid=uuid,
        create=create,
        update=update,
        label=label if label is None or label.strip() else None,
        data=data,
        base_version=_int(block.get("baseVersion"), "baseVersion"),
        trunk_version=_int(block.get("trunkVersion"), "trunkVersion"),
        branch_id=branch,
    )
