"""A submission's data as the tree of nodes XPath paths walk."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from lxml import etree

from odk_mcp.services.submissions.domain.xpath.limits import Reason, _fail
from odk_mcp.services.submissions.domain.xpath.values import _CONTEXT_STEP, _text_of_number


class _Node:
    """A node of the tree: an element with its children, or a leaf with its value."""

    __slots__ = ("by_name", "children", "index", "name", "order", "parent", "value")

    def __init__(
        self, name: str, parent: _Node | None, value: str | float = "", index: int = 1, order: int = 0
    ) -> None:
        self.name = name
        self.parent = parent
        self.value = value  # a leaf's value: text, or a number when the data was typed
        self.index = index  # position among same-name siblings, 1-based (a repeat instance's number)
        self.order = order  # document order
        self.children: list[_Node] | tuple[_Node, ...] = []
        self.by_name: dict[str, list[_Node]] | MappingProxyType[str, list[_Node]] = {}

    def add(self, name: str, value: str | float, order: int, leaf: bool = False) -> _Node:
        """A new last child; a `leaf` shares the immutable empty containers and takes no children."""
        children, by_name = self.children, self.by_name
        if type(children) is not list or type(by_name) is not dict:
            raise TypeError("a leaf takes no children")
        same_name = by_name.get(name)
        child = _Node.__new__(_Node)
        child.name = name
        child.parent = self
        child.value = value
        child.order = order
        if leaf:  # never added to: shares the empty containers
            child.children = _NO_CHILDREN
            child.by_name = _NO_NAMES
        else:
            child.children = []
            child.by_name = {}
        if same_name is None:
            child.index = 1
            by_name[name] = [child]
        else:
            child.index = len(same_name) + 1
            same_name.append(child)
        children.append(child)
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


_NO_CHILDREN: tuple[_Node, ...] = ()  # a leaf's, shared
_NO_NAMES: MappingProxyType[str, list[_Node]] = MappingProxyType({})

# A node of an `Instance`, as `Instance.locate` hands it out (opaque outside this package).
Node = _Node


def _leaf_value(value: Any) -> str | float:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is float:
        try:
            return float(value)
        except OverflowError:  # an int beyond a double's range
            return math.inf if value > 0 else -math.inf
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
        order = 1

        def fill(parent: _Node, group: Mapping[str, Any]) -> None:
            # Recursive: the data is as deep as its XML, which parsing caps far below the limit.
            nonlocal order
            for name, value in group.items():
                kind = type(value)
                if kind is list or kind is tuple or (kind is not str and isinstance(value, list | tuple)):
                    items = value
                else:
                    items = (value,)
                for item in items:
                    order += 1
                    kind = type(item)
                    if kind is dict or (kind is not str and isinstance(item, Mapping)):
                        fill(parent.add(name, "", order), item)
                    else:
                        parent.add(name, _leaf_value(item), order, leaf=True)

        fill(document.add(root, "", 1), data)
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
