"""`is_answered` is the rule checker's shortcut for `string-length(.) > 0`: it must answer exactly
what the evaluator answers, for typed leaves, groups, repeats, absent nodes and bad contexts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from odk_mcp.services.submissions.domain.xpath import Instance, evaluate_boolean, is_answered

TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
DATA: dict[str, Any] = {
    "name": "Ada",
    "empty": None,
    "blank": "",
    "zero": 0,
    "nan": float("nan"),
    "flag": False,
    "group": {"a": None, "b": ""},
    "full": {"a": None, "b": "x"},
    "member": [{"age": 3}, {"age": None}],
}
CONTEXTS = [
    "/name", "/empty", "/blank", "/zero", "/nan", "/flag", "/group", "/group/a", "/full", "/full/b",
    "/member[1]/age", "/member[2]/age", "/member[1]", "/missing", "/group/missing", "",
    "/member/age", "/member[3]/age", "/data/name", "not a path",
]  # fmt: skip


def same(instance: Instance, context: str) -> None:
    assert is_answered(instance, context) == evaluate_boolean(
        "string-length(.) > 0", instance, context, TODAY, NOW
    )


def test_is_answered_agrees_with_the_evaluator_on_every_kind_of_node() -> None:
    instance = Instance.from_dict(DATA, root="data")
    for context in CONTEXTS:
        same(instance, context)


leaves = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.floats(allow_nan=True), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(leaves, st.lists(leaves, max_size=3))))
def test_is_answered_agrees_with_the_evaluator_on_generated_data(data: dict[str, Any]) -> None:
    instance = Instance.from_dict({"g": data, "r": [data, data]}, root="data")
    for context in ("/g", "/g/a", "/g/b", "/g/c", "/r[1]", "/r[2]/a", "/r[1]/c", "/zz"):
        same(instance, context)
