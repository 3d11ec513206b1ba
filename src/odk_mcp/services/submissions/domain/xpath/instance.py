"""A submission's data as the tree of nodes XPath paths walk."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lxml import etree

from odk_mcp.services.submissions.domain.xpath.limits import Reason, _fail
from odk_mcp.services.submissions.domain.xpath.values import _CONTEXT_STEP, _text_of_number


@dataclass(eq=False, slots=True)
class _Node:
    name: str
    parent: _Node | None
    value: str | float = ""  # a leaf's value: text, or a number when the data was typed
    index: int = 1  # position among same-name siblings, 1-based (a repeat instance's number)
    order: int = 0  # document order
    children: list[_Node] = field(default_factory=list)
    by_name: dict[str, list[_Node]] = field(default_factory=dict)

    def add(self, name: str, value: str | float, order: int) -> _Node:
        same_name = self.by_name.setdefault(name, [])
        child = _Node(name, self, value, len(same_name) + 1, order)
        same_name.append(child)
        self.children.append(child)
        return child

    def named(self, name: str) -> list[_Node]:
        return self.by_name.get(name, [])

    def typed_value(self) -> str | float:
        if not self.children:
            return self.value
        texts, stack = [], list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(reversed(node.children))
            else:
                texts.append(node.value if isinstance(node.value, str) else _text_of_number(node.value))
        return "".join(texts)


# A node of an `Instance`, as `Instance.locate` hands it out (opaque outside this package).
Node = _Node


def _leaf_value(value: Any) -> str | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        try:
            return float(value)
        except OverflowError:  # an int beyond a double's range
            return math.inf if value > 0 else -math.inf
        except ValueError:  # Decimal('sNaN')
            return math.nan
    return str(value)


class Instance:
    """A submission's data as a tree of named nodes; a repeat's instances are same-name siblings."""

    def __init__(self, document: _Node) -> None:
        self._document = document
        self.root_name = document.children[0].name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], root: str) -> Instance:
        """From the typed data (`read_data`): groups as objects, repeats as lists, None for empty.

        Numbers stay numbers, as in Collect, where an int field's 0 is false and equals '0.0'.
        `root` is the name of the submission's root element, which the expressions start with.
        """
        document = _Node("", None)
        root_node = document.add(root, "", 1)
        order = 1

        def entries(parent: _Node, group: Mapping[str, Any]) -> list[tuple[_Node, str, Any]]:
            return [
                (parent, name, item)
                for name, value in group.items()
                for item in (value if isinstance(value, list | tuple) else [value])
            ]

        stack = entries(root_node, data)[::-1]
        while stack:
            parent, name, item = stack.pop()
            order += 1
            if isinstance(item, Mapping):
                stack.extend(entries(parent.add(name, "", order), item)[::-1])
            else:
                parent.add(name, _leaf_value(item), order)
        return cls(document)

    @classmethod
    def from_xml(cls, element: etree._Element) -> Instance:
        """From the submission's root element, all values as text; attributes are ignored."""
        document = _Node("", None)
        order = 0
        stack: list[tuple[_Node, etree._Element]] = [(document, element)]
        while stack:
            parent, el = stack.pop()
            order += 1
            kids = [c for c in el if isinstance(c.tag, str)]
            node = parent.add(etree.QName(el).localname, "" if kids else (el.text or ""), order)
            stack.extend((node, kid) for kid in reversed(kids))
        return cls(document)

    def contexts(self, field_path: str, repeats: Collection[str]) -> list[str]:
        """Where a schema field occurs, as context paths: one per repeat instance (`/member[2]/age`).

        `repeats` are the schema's repeat paths. A field in a repeat with no instances occurs
        nowhere; a field absent from the data still occurs once (its value is empty).
        """
        return [path for path, _ in self.locate(field_path, repeats)]

    def locate(self, field_path: str, repeats: Collection[str]) -> list[tuple[str, Node]]:
        """`contexts`, each with its node: what `_node_at(context)` would find, without parsing
        the context path again (rule checking evaluates several expressions per context). A
        field absent from the data gets an empty node in its place, as `_node_at` makes."""
        found: list[tuple[str, _Node]] = [("", self._document.children[0])]
        prefix = ""
        for name in field_path.strip("/").split("/"):
            prefix += "/" + name
            step: list[tuple[str, _Node]] = []
            for path, node in found:
                kids = node.named(name)
                if prefix in repeats or len(kids) > 1:
                    step.extend((f"{path}/{name}[{kid.index}]", kid) for kid in kids)
                elif kids:
                    step.append((f"{path}/{name}", kids[0]))
                else:  # absent from the data: an empty node in its place
                    step.append((f"{path}/{name}", _Node(name, node, "", 1, node.order)))
            found = step
        return found

    def _node_at(self, context_path: str) -> _Node:
        root = node = self._document.children[0]
        for part in context_path.strip("/").split("/") if context_path.strip("/") else []:
            step = _CONTEXT_STEP.fullmatch(part)
            if step is None:
                _fail(Reason.BAD_CONTEXT, f"not a context path: {context_path[:200]}")
            name, wanted = step.group(1), int(step.group(2)) if step.group(2) else None
            kids = node.named(name)
            if node is root and not kids and name == root.name:
                _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: context paths leave out the root element")
            if wanted is not None:
                if not 1 <= wanted <= len(kids):
                    _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: there is no {name}[{wanted}]")
                node = kids[wanted - 1]
            elif len(kids) > 1:
                _fail(Reason.BAD_CONTEXT, f"{context_path[:200]}: {name} repeats, say which ({name}[n])")
            elif kids:
                node = kids[0]
            else:  # absent from the data: evaluate as an empty node in its place
                node = _Node(name, node, "", 1, node.order)
        return node
