"""A form's OData model: its tables (the root `Submissions` and one per repeat) and, in each,
the tree of properties (values, groups as nested objects, nested repeats as navigation
properties), with ODK Central's sanitised names. Built from the form's newest schema, like
Central's feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from odk_mcp.services.aggregation.domain.naming import identifier, parent_id_property, path_parts, table_name
from odk_mcp.services.forms import Field

GEO_TYPES = frozenset({"geopoint", "geotrace", "geoshape"})


@dataclass
class Node:
    name: str  # sanitised OData name
    path: str  # absolute field path (the read model's data key)
    type: str  # bind type, "structure" or "repeat"
    children: list[Node] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.type == "structure"

    @property
    def is_repeat(self) -> bool:
        return self.type == "repeat"


@dataclass
class Table:
    name: str
    repeat_path: str | None
    enclosing_repeat: str | None
    nodes: list[Node]

    @property
    def parent_property(self) -> str | None:
        return None if self.repeat_path is None else parent_id_property(self.enclosing_repeat)

    def find(self, odata_path: str) -> tuple[Node, list[Node]] | None:
        """The node at a sanitised relative path (`grp/x`) and its ancestors in this table."""
        nodes, trail = self.nodes, list[Node]()
        parts = odata_path.split("/")
        for index, part in enumerate(parts):
            match = next((n for n in nodes if n.name == part), None)
            if match is None:
                return None
            if index == len(parts) - 1:
                return match, trail
            trail.append(match)
            nodes = match.children
        return None


@dataclass
class FormModel:
    xml_form_id: str
    tables: dict[str, Table]
    fields: tuple[Field, ...]

    @property
    def root(self) -> Table:
        return self.tables["Submissions"]


def build_model(xml_form_id: str, fields: Iterable[Field]) -> FormModel:
    ordered = tuple(fields)
    contexts: dict[str | None, list[Node]] = {None: []}
    enclosing: dict[str | None, str | None] = {None: None}
    groups: dict[str, Node] = {}
    for f in ordered:
        if f.type == "repeat":
            contexts[f.path] = []
            enclosing[f.path] = f.repeat
        node = Node(identifier(f.name), f.path, f.type)
        parent = f.path.rsplit("/", 1)[0]
        if f.type == "structure":
            groups[f.path] = node
        if parent in groups and parent != f.repeat:
            groups[parent].children.append(node)
        else:
            contexts.setdefault(f.repeat, []).append(node)
    tables = {
        table_name(path): Table(table_name(path), path, enclosing.get(path), nodes)
        for path, nodes in contexts.items()
    }
    return FormModel(xml_form_id, tables, ordered)


def group_type_name(node: Node) -> str:
    """The EDMX complex type of a group: its path parts joined by dots (`hh.member.details`)."""
    return ".".join(path_parts(node.path))
