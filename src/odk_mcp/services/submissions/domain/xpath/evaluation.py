"""Evaluating a compiled expression, and the entry point `evaluate_boolean`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import lru_cache
from operator import ge, gt, le, lt

from odk_mcp.services.submissions.domain.xpath.context import _Context, _Focus
from odk_mcp.services.submissions.domain.xpath.functions import _FUNCTIONS, _java_int
from odk_mcp.services.submissions.domain.xpath.instance import Instance, _Node
from odk_mcp.services.submissions.domain.xpath.limits import (
    MAX_EXPRESSION_CHARS,
    NotEvaluated,
    Reason,
    _fail,
    _Unevaluable,
)
from odk_mcp.services.submissions.domain.xpath.syntax import (
    _Call,
    _Chain,
    _compile,
    _Expr,
    _Filter,
    _Literal,
    _Negate,
    _Path,
    _Step,
)
from odk_mcp.services.submissions.domain.xpath.values import (
    _arithmetic,
    _atomic,
    _boolean,
    _equal,
    _is_number,
    _Nodes,
    _nodes_of,
    _number,
    _Value,
)

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {"<": lt, "<=": le, ">": gt, ">=": ge}

# An expression compiled to a closure over its parts: called with the focus and the context, it
# returns the expression's value. Building the closures once per distinct expression removes the
# interpreter's dispatch on the kind of every part at every evaluation (rule checking evaluates
# the same few expressions for every submission). Each closure spends the steps the
# tree-walking evaluator spent: one per expression evaluated, and one plus the candidates per
# path step.
_Fn = Callable[[_Focus, _Context], _Value]


def _build(expr: _Expr) -> _Fn:
    if isinstance(expr, _Literal):
        return _literal(expr.value)
    if isinstance(expr, _Chain):
        return _chain(expr)
    if isinstance(expr, _Negate):
        return _negate(_build(expr.operand))
    if isinstance(expr, _Call):
        return _call(expr)
    if isinstance(expr, _Path):
        return _path(expr)
    if isinstance(expr, _Filter):
        return _filtered(_build(expr.base), tuple(_build(p) for p in expr.predicates))
    return _union(tuple(_build(part) for part in expr.parts))


def _literal(value: _Value) -> _Fn:
    def literal(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        return value

    return literal


def _negate(operand: _Fn) -> _Fn:
    def negate(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        return -_number(operand(focus, ctx))

    return negate


def _chain(expr: _Chain) -> _Fn:
    operator = expr.rest[0][0]
    first = _build(expr.first)
    if operator in ("or", "and"):
        operands = (first, *(_build(e) for _, e in expr.rest))
        decisive = operator == "or"  # the operand value that settles the whole chain

        def logical(focus: _Focus, ctx: _Context) -> _Value:
            ctx.spend(1)
            for operand in operands:
                if _boolean(operand(focus, ctx)) == decisive:
                    return decisive
            return not decisive

        return logical
    if len(expr.rest) == 1:
        return _binary(operator, first, _build(expr.rest[0][1]))
    rest = tuple((op, _binary_operation(op)) for op, _ in expr.rest)
    operands_rest = tuple(_build(e) for _, e in expr.rest)

    def fold(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        result = first(focus, ctx)
        for (_, operation), operand in zip(rest, operands_rest, strict=True):
            result = operation(result, operand(focus, ctx))
        return result

    return fold


def _binary_operation(operator: str) -> Callable[[_Value, _Value], _Value]:
    if operator in ("=", "!="):
        wanted = operator == "="
        return lambda a, b: _equal(_atomic(a), _atomic(b)) == wanted
    if operator in _COMPARISONS:
        compare = _COMPARISONS[operator]
        return lambda a, b: compare(_number(a), _number(b))
    return lambda a, b: _arithmetic(operator, _number(a), _number(b))


def _binary(operator: str, left: _Fn, right: _Fn) -> _Fn:
    if operator in _COMPARISONS:
        compare = _COMPARISONS[operator]

        def comparison(focus: _Focus, ctx: _Context) -> _Value:
            ctx.spend(1)
            a = left(focus, ctx)
            b = right(focus, ctx)
            return compare(_number(a), _number(b))

        return comparison
    operation = _binary_operation(operator)

    def binary(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        a = left(focus, ctx)
        return operation(a, right(focus, ctx))

    return binary


def _call(call: _Call) -> _Fn:
    args = tuple(_build(a) for a in call.args)
    if call.name == "if":
        condition, then, otherwise = args

        def if_(focus: _Focus, ctx: _Context) -> _Value:
            ctx.spend(1)
            return (then if _boolean(condition(focus, ctx)) else otherwise)(focus, ctx)

        return if_
    if call.name == "coalesce":
        first_fn, second_fn = args

        def coalesce(focus: _Focus, ctx: _Context) -> _Value:
            ctx.spend(1)
            first = _atomic(first_fn(focus, ctx))
            empty = first == "" or (_is_number(first) and math.isnan(first))
            return second_fn(focus, ctx) if empty else first

        return coalesce
    if call.name == "indexed-repeat":
        return _indexed_repeat(call.args)
    impl = _FUNCTIONS[call.name][2]

    def function(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        return impl([a(focus, ctx) for a in args], focus, ctx)

    return function


def _path(path: _Path) -> _Fn:
    steps = path.steps
    if path.base is None and not path.absolute and len(steps) == 1 and steps[0] == _Step("."):

        def self_node(focus: _Focus, ctx: _Context) -> _Value:  # `.`, the commonest path
            ctx.spend(3)  # the expression, then the step with its one candidate
            return _Nodes((focus.node,))

        return self_node
    walk = _walker(path)

    def nodes(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        return _Nodes(walk(focus, ctx, {}))

    return nodes


_Walk = Callable[[_Focus, _Context, dict[int, int]], tuple[_Node, ...]]


def _walker(path: _Path) -> _Walk:
    """The nodes a path reaches; `pins` keeps steps in given instances (indexed-repeat())."""
    base = _build(path.base) if path.base is not None else None
    absolute = path.absolute
    steps = tuple((step.name, tuple(_build(p) for p in step.predicates)) for step in path.steps)
    raw_steps = path.steps

    def walk(focus: _Focus, ctx: _Context, pins: dict[int, int]) -> tuple[_Node, ...]:
        nodes: tuple[_Node, ...]
        if base is not None:
            nodes = _nodes_of(base(focus, ctx), "a path step after (...)")
        elif absolute:
            nodes = (ctx.document,)
            pins = {**ctx.pins(raw_steps), **pins}
        else:
            nodes = (focus.node,)
        for i, (name, predicates) in enumerate(steps):
            found: dict[int, _Node] = {}
            for node in nodes:
                candidates: Sequence[_Node]
                if name == ".":
                    candidates = [node]
                elif name == "..":
                    candidates = [node.parent] if node.parent is not None else []
                elif name == "*":
                    candidates = node.children
                else:
                    candidates = node.named(name)
                if i in pins:  # only named steps are pinned; named() lists them by index
                    candidates = candidates[pins[i] - 1 : pins[i]]
                ctx.spend(1 + len(candidates))
                for predicate in predicates:
                    candidates = list(_filter(tuple(candidates), predicate, ctx))
                found.update((id(c), c) for c in candidates)
            nodes = tuple(found.values())
        return nodes

    return walk


def _filtered(base: _Fn, predicates: tuple[_Fn, ...]) -> _Fn:
    def filtered(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        nodes = _nodes_of(base(focus, ctx), "a filter [...]")
        for predicate in predicates:
            nodes = _filter(nodes, predicate, ctx)
        return _Nodes(nodes)

    return filtered


def _union(parts: tuple[_Fn, ...]) -> _Fn:
    def union(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        found: dict[int, _Node] = {}
        for part in parts:
            found.update((id(n), n) for n in _nodes_of(part(focus, ctx), "a union (|)"))
        return _Nodes(tuple(sorted(found.values(), key=lambda n: n.order)))

    return union


def _filter(nodes: tuple[_Node, ...], predicate: _Fn, ctx: _Context) -> tuple[_Node, ...]:
    kept = []
    for position, node in enumerate(nodes, 1):
        value = predicate(_Focus(node, position, len(nodes)), ctx)
        keep = value == position if _is_number(value) else _boolean(value)  # [2] means position 2
        if keep:
            kept.append(node)
    return tuple(kept)


def _indexed_repeat(args: tuple[_Expr, ...]) -> _Fn:
    target = args[0]
    if not (isinstance(target, _Path) and target.absolute and target.base is None):
        return _failing(
            Reason.UNSUPPORTED_SYNTAX, "indexed-repeat() needs an absolute path as its first argument"
        )
    levels: list[tuple[int, _Fn]] = []
    for group, index in zip(args[1::2], args[2::2], strict=True):
        if not (
            isinstance(group, _Path)
            and group.absolute
            and group.base is None
            and [s.name for s in group.steps] == [s.name for s in target.steps[: len(group.steps)]]
            and 0 < len(group.steps) < len(target.steps)
        ):
            return _failing(
                Reason.TYPE_ERROR,
                "indexed-repeat(): each repeat must be an absolute path enclosing the field",
            )
        levels.append((len(group.steps) - 1, _build(index)))
    walk = _walker(target)

    def indexed_repeat(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        pins = {level: max(_java_int(_number(index(focus, ctx))), 1) for level, index in levels}
        return _Nodes(walk(focus, ctx, pins))

    return indexed_repeat


def _failing(reason: Reason, detail: str) -> _Fn:
    """A call that can never be evaluated fails when it is reached, as the interpreter did (an
    `if()` may never reach it)."""

    def failing(focus: _Focus, ctx: _Context) -> _Value:
        ctx.spend(1)
        _fail(reason, detail)

    return failing


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> _Fn | NotEvaluated:
    """The closure of an expression, built once per distinct expression."""
    tree = _compile(expression)
    return tree if isinstance(tree, NotEvaluated) else _build(tree)


# --- The entry point ---------------------------------------------------------------------------


def evaluate_boolean(
    expression: str, instance: Instance, context_path: str | _Node, today: date, now: datetime
) -> bool | NotEvaluated:
    """Evaluate a bind's rule on a submission, at `context_path`, as ODK Collect would.

    `context_path` is the field's path as the schema writes it, without the root element
    (`/household/member/age`), with the repeat instance where there are several
    (`/household/member[2]/age`, as `Instance.contexts` gives them). `today` and `now` are
    what `today()` and `now()` return. A node from `instance.locate(...)` may stand for its
    context path.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        return NotEvaluated(Reason.TOO_COMPLEX, f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    if isinstance(today, datetime):
        today = today.date()
    try:
        compiled = _compiled(expression)
        if isinstance(compiled, NotEvaluated):
            return compiled
        origin = instance._node_at(context_path) if isinstance(context_path, str) else context_path
        document = instance._document
        return _boolean(compiled(_Focus(origin), _Context(document, origin, today, now)))
    except _Unevaluable as exc:
        return NotEvaluated(exc.reason, exc.detail)
    except RecursionError:
        return NotEvaluated(Reason.TOO_COMPLEX, "nested too deeply to evaluate")
    except Exception as exc:  # noqa: BLE001 - a hostile form must never turn into a server error
        return NotEvaluated(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {str(exc)[:200]}")


def is_answered(instance: Instance, context_path: str | _Node) -> bool | NotEvaluated:
    """`string-length(.) > 0` at `context_path`, as `evaluate_boolean` answers it, without the
    interpreter: rule checking asks it for every rule and context (about three quarters of all
    evaluations for a typical form)."""
    try:
        node = instance._node_at(context_path) if isinstance(context_path, str) else context_path
        value = node.typed_value()
    except _Unevaluable as exc:
        return NotEvaluated(exc.reason, exc.detail)
    return not isinstance(value, str) or len(value) > 0
