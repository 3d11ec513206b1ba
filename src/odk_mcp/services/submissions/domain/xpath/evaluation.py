"""Evaluating a compiled expression, and the entry point `evaluate_boolean`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
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


def _eval(expr: _Expr, focus: _Focus, ctx: _Context) -> _Value:
    ctx.spend(1)
    if isinstance(expr, _Literal):
        return expr.value
    if isinstance(expr, _Chain):
        return _eval_chain(expr, focus, ctx)
    if isinstance(expr, _Negate):
        return -_number(_eval(expr.operand, focus, ctx))
    if isinstance(expr, _Call):
        return _eval_call(expr, focus, ctx)
    if isinstance(expr, _Path):
        return _Nodes(_eval_path(expr, focus, ctx, {}))
    if isinstance(expr, _Filter):
        nodes = _nodes_of(_eval(expr.base, focus, ctx), "a filter [...]")
        for predicate in expr.predicates:
            nodes = _filter(nodes, predicate, ctx)
        return _Nodes(nodes)
    found: dict[int, _Node] = {}
    for part in expr.parts:
        found.update((id(n), n) for n in _nodes_of(_eval(part, focus, ctx), "a union (|)"))
    return _Nodes(tuple(sorted(found.values(), key=lambda n: n.order)))


def _eval_chain(expr: _Chain, focus: _Focus, ctx: _Context) -> _Value:
    operator = expr.rest[0][0]
    if operator in ("or", "and"):
        decisive = operator == "or"  # the operand value that settles the whole chain
        for operand in (expr.first, *(e for _, e in expr.rest)):
            if _boolean(_eval(operand, focus, ctx)) == decisive:
                return decisive
        return not decisive
    result: _Value = _eval(expr.first, focus, ctx)
    for operator, operand in expr.rest:
        right = _eval(operand, focus, ctx)
        if operator in ("=", "!="):
            result = _equal(_atomic(result), _atomic(right)) == (operator == "=")
        elif operator in _COMPARISONS:
            result = _COMPARISONS[operator](_number(result), _number(right))
        else:
            result = _arithmetic(operator, _number(result), _number(right))
    return result


def _eval_path(path: _Path, focus: _Focus, ctx: _Context, pins: dict[int, int]) -> tuple[_Node, ...]:
    nodes: tuple[_Node, ...]
    if path.base is not None:
        nodes = _nodes_of(_eval(path.base, focus, ctx), "a path step after (...)")
    elif path.absolute:
        nodes = (ctx.document,)
        pins = {**ctx.pins(path.steps), **pins}
    else:
        nodes = (focus.node,)
    for i, step in enumerate(path.steps):
        found: dict[int, _Node] = {}
        for node in nodes:
            if step.name == ".":
                candidates = [node]
            elif step.name == "..":
                candidates = [node.parent] if node.parent is not None else []
            elif step.name == "*":
                candidates = node.children
            else:
                candidates = node.named(step.name)
            if i in pins:  # only named steps are pinned; named() lists them by index
                candidates = candidates[pins[i] - 1 : pins[i]]
            ctx.spend(1 + len(candidates))
            for predicate in step.predicates:
                candidates = list(_filter(tuple(candidates), predicate, ctx))
            found.update((id(c), c) for c in candidates)
        nodes = tuple(found.values())
    return nodes


def _filter(nodes: tuple[_Node, ...], predicate: _Expr, ctx: _Context) -> tuple[_Node, ...]:
    kept = []
    for position, node in enumerate(nodes, 1):
        value = _eval(predicate, _Focus(node, position, len(nodes)), ctx)
        keep = value == position if _is_number(value) else _boolean(value)  # [2] means position 2
        if keep:
            kept.append(node)
    return tuple(kept)


def _eval_call(call: _Call, focus: _Focus, ctx: _Context) -> _Value:
    args = call.args
    if call.name == "if":
        return _eval(args[1] if _boolean(_eval(args[0], focus, ctx)) else args[2], focus, ctx)
    if call.name == "coalesce":
        first = _atomic(_eval(args[0], focus, ctx))
        empty = first == "" or (_is_number(first) and math.isnan(first))
        return _eval(args[1], focus, ctx) if empty else first
    if call.name == "indexed-repeat":
        return _indexed_repeat(args, focus, ctx)
    return _FUNCTIONS[call.name][2]([_eval(a, focus, ctx) for a in args], focus, ctx)


def _indexed_repeat(args: tuple[_Expr, ...], focus: _Focus, ctx: _Context) -> _Value:
    target = args[0]
    if not (isinstance(target, _Path) and target.absolute and target.base is None):
        _fail(Reason.UNSUPPORTED_SYNTAX, "indexed-repeat() needs an absolute path as its first argument")
    pins: dict[int, int] = {}
    for group, index in zip(args[1::2], args[2::2], strict=True):
        if not (
            isinstance(group, _Path)
            and group.absolute
            and group.base is None
            and [s.name for s in group.steps] == [s.name for s in target.steps[: len(group.steps)]]
            and 0 < len(group.steps) < len(target.steps)
        ):
            _fail(
                Reason.TYPE_ERROR,
                "indexed-repeat(): each repeat must be an absolute path enclosing the field",
            )
        pins[len(group.steps) - 1] = max(_java_int(_number(_eval(index, focus, ctx))), 1)
    return _Nodes(_eval_path(target, focus, ctx, pins))


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
        compiled = _compile(expression)
        if isinstance(compiled, NotEvaluated):
            return compiled
        origin = instance._node_at(context_path) if isinstance(context_path, str) else context_path
        document = instance._document
        return _boolean(_eval(compiled, _Focus(origin), _Context(document, origin, today, now)))
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
