"""Compiling a table layout into one Python function that shapes a row into its entity.

Shaping a page of 250 rows walks the same layout 250 times; interpreting it step by step
(a tuple unpacked, a branch taken, a converter called per value) was most of a first page's
time. Here a layout is turned once per request into the source of a function that does, for
one row, exactly those assignments in that order — integer, decimal and text values are
converted inline, the other types call their converter — and compiled with `compile()`.

Nothing from the form is ever pasted into the source as code: property names and paths enter
only as `repr()` string literals (a valid literal for any string), and nodes and converters
are passed in through the function's namespace by generated names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

# (target, data, key, instance_id, context) -> None: fills `target` with a row's properties.
Shaper = Callable[[dict[str, Any], Mapping[str, Any], str, str, Any], None]

_INLINE = {
    # Same results as render._integer, _decimal and _text.
    "int": "v if v.__class__ is int else None",
    "decimal": "v if v.__class__ is int or v.__class__ is float else None",
    "text": "v if v is None or v.__class__ is str else str(v)",
}


def compile_shaper(
    steps: Sequence[tuple[str, Any, Any]],
    kinds: Mapping[int, str],
    link: Callable[..., str],
    expanded: Callable[..., dict[str, Any]],
) -> Shaper:
    """The function doing what `steps` (a compiled plan: values, groups, repeats) describe;
    `kinds` tells, by converter identity, which converters can be inlined."""
    namespace: dict[str, Any] = {"_link": link, "_expanded": expanded}
    lines = [
        "def shape(t, data, key, instance_id, context):",
        "    g = data.get",
        "    present = context.children.present",
    ]
    counter = [0]

    def name(prefix: str, value: Any) -> str:
        counter[0] += 1
        generated = f"{prefix}{counter[0]}"
        namespace[generated] = value
        return generated

    def emit(plan: Sequence[tuple[str, Any, Any]], target: str, indent: str) -> None:
        for first, second, third in plan:
            if first == "group":
                counter[0] += 1
                group = f"g{counter[0]}"
                lines.append(f"{indent}{group} = {{}}")
                emit(third, group, indent)
                lines.append(f"{indent}{target}[{second!r}] = {group}")
            elif first == "repeat":
                node = name("n", third)
                lines.append(f"{indent}if (key, {third.path!r}) in present:")
                link_name = second + "@odata.navigationLink"
                lines.append(f"{indent}    {target}[{link_name!r}] = _link(instance_id, key, {node})")
                lines.append(f"{indent}    if context.expand:")
                lines.append(
                    f"{indent}        {target}[{second!r}] = [_expanded(c, instance_id, context)"
                    f" for c in context.children.rows[(key, {third.path!r})]]"
                )
            else:
                inline = _INLINE.get(kinds.get(id(third), ""))
                lines.append(f"{indent}v = g({second!r})")
                if inline is not None:
                    lines.append(f"{indent}{target}[{first!r}] = {inline}")
                else:
                    lines.append(f"{indent}{target}[{first!r}] = {name('c', third)}(v)")

    emit(steps, "t", "    ")
    code = compile("\n".join(lines) + "\n", "<odata shaper>", "exec")
    exec(code, namespace)  # noqa: S102 - our own generated source; form text only in repr() literals
    shaper: Shaper = namespace["shape"]
    return shaper
