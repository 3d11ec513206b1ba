"""What an evaluation carries: the focus node, the rule's origin, the clock and the step budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from odk_mcp.services.submissions.domain.xpath.instance import _Node
from odk_mcp.services.submissions.domain.xpath.limits import MAX_STEPS, Reason, _fail

if TYPE_CHECKING:
    from odk_mcp.services.submissions.domain.xpath.syntax import _Step


class _Focus:
    """The node an expression is evaluated at; inside a predicate, also the candidate's position
    and the candidate set's size. (A plain class: one is made per evaluation and per candidate.)"""

    __slots__ = ("node", "position", "size")

    def __init__(self, node: _Node, position: int | None = None, size: int | None = None) -> None:
        self.node = node
        self.position = position
        self.size = size


@dataclass(slots=True)
class _Context:
    document: _Node
    origin: _Node  # the node the rule is on: current(), and the repeat instances paths resolve to
    today: date
    now: datetime
    steps_left: int = MAX_STEPS

    def spend(self, steps: int) -> None:
        self.steps_left -= steps
        if self.steps_left < 0:
            _fail(Reason.TOO_COMPLEX, f"more than {MAX_STEPS} evaluation steps")

    def pins(self, steps: Sequence[_Step]) -> dict[int, int]:
        """ODK's contextualisation: which steps of an absolute path stay in the origin's instances."""
        chain: list[_Node] = []
        node: _Node | None = self.origin
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()  # document, root, ..., origin
        pins: dict[int, int] = {}
        for i, step in enumerate(steps):
            if i + 1 >= len(chain) or step.name != chain[i + 1].name:
                break
            if not step.predicates:
                pins[i] = chain[i + 1].index
        return pins
