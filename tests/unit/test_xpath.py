"""The XPath evaluator that checks a form's rules on received submissions, as ODK Collect would.

Each table row is an expression, the context it is evaluated at (a field path without the root
element, with repeat instances numbered) and what it must give: True, False, or the reason it
cannot be evaluated.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from odk_mcp.services.submissions.domain.xpath import (
    MAX_EXPRESSION_CHARS,
    Instance,
    NotEvaluated,
    Reason,
    evaluate_boolean,
)

TODAY = date(2026, 3, 1)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

DATA: dict[str, Any] = {
    "age": 30,
    "height": 1.75,
    "zero": 0,
    "name": "Amina",
    "empty": None,
    "note": "  hello   world ",
    "text_number": "42",
    "comma": "3,5",
    "likes": "rice beans",
    "code": "AB123456",
    "phone": "+254700000000",
    "dob": "2000-02-29",
    "visit": "2026-01-02",
    "started": "2026-01-02T08:30:00.000+03:00",
    "clock": "06:00:00.000-07:00",
    "div": 8,
    "mod": 3,
    "household": {
        "size": 3,
        "member": [
            {"name": "A", "age": 40, "sex": "f"},
            {"name": "B", "age": 12, "sex": "m"},
            {"name": "C", "age": None, "sex": "f"},
        ],
    },
    "plots": [
        {"area": 1.5, "crop": [{"kind": "maize"}, {"kind": "beans"}]},
        {"area": 2.5, "crop": [{"kind": "rice"}]},
    ],
}

INSTANCE = Instance.from_dict(DATA, root="data")

Expected = bool | Reason


def check(expression: str, context: str = "/age", instance: Instance = INSTANCE) -> bool | Reason:
    result = evaluate_boolean(expression, instance, context, TODAY, NOW)
    return result.reason if isinstance(result, NotEvaluated) else result


def table(*rows: tuple[str, str, Expected]) -> Any:
    return pytest.mark.parametrize(("expression", "context", "expected"), rows, ids=[r[0][:60] for r in rows])


# -- arithmetic, comparison and precedence -----------------------------------------------------


@table(
    ("1 + 2 * 3 = 7", "/age", True),
    ("(1 + 2) * 3 = 9", "/age", True),
    ("10 - 4 - 3 = 3", "/age", True),
    ("2 * 3 div 4 = 1.5", "/age", True),
    ("7 mod 3 = 1", "/age", True),
    ("-7 mod 3 = -1", "/age", True),
    ("7 mod -3 = 1", "/age", True),
    ("5.5 mod 2 = 1.5", "/age", True),
    ("1 div 0 > 1000000", "/age", True),
    ("-1 div 0 < -1000000", "/age", True),
    ("0 div 0 = 0 div 0", "/age", False),
    ("0 div 0 != 0 div 0", "/age", True),
    ("- 3 + 5 = 2", "/age", True),
    ("--3 = 3", "/age", True),
    ("-(2 + 3) = -5", "/age", True),
    (".5 + .5 = 1", "/age", True),
    ("0.1 + 0.2 = 0.3", "/age", True),
    ("1 < 2 = true()", "/age", True),
    ("3 > 2 > 1", "/age", False),
    ("1 = 1 and 2 = 3 or 4 = 4", "/age", True),
    ("1 = 2 or 3 = 3 and 4 = 5", "/age", False),
    ("'abc' = 'abc'", "/age", True),
    ("'abc' != 'abd'", "/age", True),
    ("'10' = 10", "/age", True),
    ("'10.0' = 10", "/age", True),
    ("'2' < '10'", "/age", True),
    ("'abc' < 'abd'", "/age", False),
    ("true() = 'false'", "/age", True),
    ("false() = ''", "/age", True),
    ("true() = 1 and false() = 0", "/age", True),
    ("/data/div div /data/mod > 2", "/age", True),
)
def test_arithmetic_comparison_and_precedence(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- paths ------------------------------------------------------------------------------------


@table(
    (". = 30", "/age", True),
    (". >= 0 and . < 120", "/age", True),
    ("/data/age = 30", "/name", True),
    ("../age = 30", "/name", True),
    ("./. = 30", "/age", True),
    ("../../age = 30", "/household/size", True),
    ("current()/../age = 30", "/name", True),
    ("/data/household/size = 3", "/age", True),
    ("/data/nope = ''", "/age", True),
    ("count(/data/nope) = 0", "/age", True),
    ("/data/household/member[2]/name = 'B'", "/age", True),
    ("/data/household/member[age > 20]/name = 'A'", "/age", True),
    ("count(/data/household/member[sex = 'f']) = 2", "/age", True),
    ("/data/household/member[last()]/name = 'C'", "/age", True),
    ("/data/household/member[position() = 2]/name = 'B'", "/age", True),
    ("count(/data/household/*) = 4", "/age", True),
    ("(/data/household/member)[1]/name = 'A'", "/age", True),
    ("count(/data/age | /data/name | /data/age) = 2", "/age", True),
    ("concat(/data/household/member[2]/name | /data/household/member[1]/name) = 'AB'", "/age", True),
    ("count(/data/household/member[age > current()]) = 2", "/household/size", True),
    ("/data/household/member/name = 'A'", "/age", Reason.TYPE_ERROR),
)
def test_paths(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- repeats: absolute paths stay in the repeat instance being evaluated ------------------------


@table(
    ("/data/household/member/age > 18", "/household/member[1]/name", True),
    ("/data/household/member/age > 18", "/household/member[2]/name", False),
    ("../age > 18", "/household/member[1]/name", True),
    ("/data/household/member/sex = 'm'", "/household/member[2]", True),
    ("/data/household/size = 3", "/household/member[2]/name", True),
    ("position(..) = 2", "/household/member[2]/name", True),
    ("position() = 3", "/household/member[3]", True),
    ("/data/plots/crop/kind = 'beans'", "/plots[1]/crop[2]/kind", True),
    ("/data/plots/area = 2.5", "/plots[2]/crop[1]/kind", True),
    ("count(/data/plots/crop) = 2", "/plots[1]/area", True),
    ("count(/data/plots/crop) = 1", "/plots[2]/area", True),
    ("count(/data/household/member[age > 18]) = 1", "/household/member[2]/name", True),
    ("sum(/data/plots/area) = 4", "/age", True),
    ("sum(/data/household/member/age) = 52", "/age", True),
    ("indexed-repeat(/data/household/member/name, /data/household/member, 3) = 'C'", "/age", True),
    ("indexed-repeat(/data/household/member/name, /data/household/member, 1 + 1) = 'B'", "/age", True),
    ("indexed-repeat(/data/plots/crop/kind, /data/plots, 1, /data/plots/crop, 2) = 'beans'", "/age", True),
    ("indexed-repeat(/data/household/member/name, /data/household/member, 0) = 'A'", "/age", True),
    ("indexed-repeat(/data/household/member/name, /data/household/member, 9) = ''", "/age", True),
    ("indexed-repeat(/data/age, /data/household/member, 1) = 30", "/age", Reason.TYPE_ERROR),
    ("indexed-repeat(name, /data/household/member, 1) = 'A'", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("indexed-repeat(/data/household/member/name, /data/household/member)", "/age", Reason.TYPE_ERROR),
    ("/data/household/member/age > 18", "/age", Reason.TYPE_ERROR),
)
def test_repeats(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- empty answers and NaN ----------------------------------------------------------------------


@table(
    (". = ''", "/empty", True),
    ("not(.)", "/empty", True),
    ("string-length(.) = 0", "/empty", True),
    ("number(.) = number(.)", "/empty", False),
    (". > 0", "/empty", False),
    (". < 0", "/empty", False),
    (". = 0", "/empty", False),
    (". != 0", "/empty", True),
    (". + 1 = 1", "/empty", False),
    ("number('') != number('')", "/age", True),
    ("/data/nope > 0", "/age", False),
    ("not(/data/zero)", "/age", True),
    ("/data/zero = 0", "/age", True),
    ("boolean(/data/text_number)", "/age", True),
    ("coalesce(/data/empty, 'x') = 'x'", "/age", True),
    ("coalesce(/data/name, 'x') = 'Amina'", "/age", True),
    ("coalesce(number(''), 5) = 5", "/age", True),
    ("/data/comma > 3", "/age", Reason.TYPE_ERROR),
    (". != ''", "/not_in_the_data", False),
)
def test_empty_values_and_nan(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- text ---------------------------------------------------------------------------------------


@table(
    ("concat('a', 'b', 1) = 'ab1'", "/age", True),
    ("concat(/data/household/member/name) = 'ABC'", "/age", True),
    ("concat(/data/household/member/name, 'x') = 'x'", "/age", Reason.TYPE_ERROR),
    ("join(' ', /data/household/member/name) = 'A B C'", "/age", True),
    ("join('-', 'a', 'b') = 'a-b'", "/age", True),
    ("contains(/data/name, 'min')", "/age", True),
    ("starts-with(/data/name, 'Am')", "/age", True),
    ("ends-with(/data/name, 'na')", "/age", True),
    ("substr('abcdef', 1, 3) = 'bc'", "/age", True),
    ("substr('abcdef', 2) = 'cdef'", "/age", True),
    ("substr('abcdef', -2) = 'ef'", "/age", True),
    ("substr('abc', 5) = ''", "/age", True),
    ("substr('abc', number('')) = 'abc'", "/age", True),
    ("substring('12345', 2, 3) = '234'", "/age", True),
    ("substring('12345', 1.5, 2.6) = '234'", "/age", True),
    ("substring('12345', 0, 3) = '12'", "/age", True),
    ("substring('12345', 0 div 0, 3) = ''", "/age", True),
    ("substring('12345', -42, 1 div 0) = '12345'", "/age", True),
    ("string-length('héllo') = 5", "/age", True),
    ("string-length() = 5", "/name", True),
    ("normalize-space(/data/note) = 'hello world'", "/age", True),
    ("translate('bar', 'abc', 'ABC') = 'BAr'", "/age", True),
    ("translate('--aaa--', 'abc-', 'ABC') = 'AAA'", "/age", True),
    ("substring-before('1999/04/01', '/') = '1999'", "/age", True),
    ("substring-after('1999/04/01', '/') = '04/01'", "/age", True),
    ("substring-before('abc', 'z') = ''", "/age", True),
    ("string(1.50) = '1.5'", "/age", True),
    ("string(10 div 4) = '2.5'", "/age", True),
    ("string(3) = '3'", "/age", True),
    ("string(0 div 0) = 'NaN'", "/age", True),
    ("string(1 div 0) = 'Infinity'", "/age", True),
    ("string(true()) = 'true'", "/age", True),
    ("string(/data/height) = '1.75'", "/age", True),
    ("string() = '30'", "/age", True),
)
def test_text_functions(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- numbers ------------------------------------------------------------------------------------


@table(
    ("number('42') = 42", "/age", True),
    ("number(' 42 ') = 42", "/age", True),
    ("number('4e2') != number('4e2')", "/age", True),
    ("number('+5') != number('+5')", "/age", True),
    ("number(true()) = 1", "/age", True),
    ("number() = 30", "/age", True),
    ("int(3.7) = 3", "/age", True),
    ("int(-3.7) = -3", "/age", True),
    ("int('7.9') = 7", "/age", True),
    ("round(2.5) = 3", "/age", True),
    ("round(-2.5) = -2", "/age", True),
    ("round(1.2345, 2) = 1.23", "/age", True),
    ("round(1.235, 2) = 1.24", "/age", True),
    ("round(1234.5, -2) = 1200", "/age", True),
    ("round(1, 31) != round(1, 31)", "/age", True),
    ("floor(-1.5) = -2", "/age", True),
    ("ceiling(1.2) = 2", "/age", True),
    ("abs(-3) = 3", "/age", True),
    ("pow(2, 10) = 1024", "/age", True),
    ("pow(10, 400) > 1000000", "/age", True),
    ("sqrt(-1) != sqrt(-1)", "/age", True),
    ("round(pi() * 100) = 314", "/age", True),
    ("log10(1000) = 3 and exp(0) = 1", "/age", True),
    ("max(1, 5, 3) = 5", "/age", True),
    ("min(/data/household/member/age) = 12", "/age", True),
    ("max(/data/nope) != max(/data/nope)", "/age", True),
    ("count-non-empty(/data/household/member/age) = 2", "/age", True),
)
def test_number_functions(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- choices, booleans and if() -----------------------------------------------------------------


@table(
    ("selected(/data/likes, 'rice')", "/age", True),
    ("selected(/data/likes, 'ric')", "/age", False),
    ("selected(/data/likes, ' beans ')", "/age", True),
    ("selected(/data/empty, 'rice')", "/age", False),
    ("is-selected(/data/likes, 'rice')", "/age", True),
    ("selected(/data/likes, 1)", "/age", Reason.TYPE_ERROR),
    ("count-selected(/data/likes) = 2", "/age", True),
    ("count-selected(/data/empty) = 0", "/age", True),
    ("selected-at(/data/likes, 1) = 'beans'", "/age", True),
    ("selected-at(/data/likes, 5) = ''", "/age", True),
    ("selected-at(/data/likes, number('')) = 'rice'", "/age", True),
    ("not(selected(., 'none') and count-selected(.) > 1)", "/likes", True),
    ("true() and not(false())", "/age", True),
    ("boolean('a') and not(boolean(''))", "/age", True),
    ("boolean(0) = false()", "/age", True),
    ("boolean-from-string('TRUE') and boolean-from-string('1')", "/age", True),
    ("boolean-from-string('yes')", "/age", False),
    ("if(/data/age > 18, 'adult', 'child') = 'adult'", "/age", True),
    ("if(false(), /data/household/member/name, 'ok') = 'ok'", "/age", True),
    ("false() and /data/household/member/name = 'x'", "/age", False),
    ("true() or /data/household/member/name = 'x'", "/age", True),
    ("if(true(), 1, unknown())", "/age", Reason.UNKNOWN_FUNCTION),
)
def test_choices_booleans_and_if(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- regex --------------------------------------------------------------------------------------


@table(
    ("regex(/data/code, '^[A-Z]{2}[0-9]{6}$')", "/age", True),
    ("regex(/data/code, '[A-Z]{2}')", "/age", False),
    ("regex(/data/phone, '\\+?[0-9]{7,15}')", "/age", True),
    ("regex(., '')", "/empty", True),
    ("regex('abc', 'ABC')", "/age", False),
    ("regex('abc', '(?i)ABC')", "/age", True),
    ("regex('Zoë', '^\\p{L}+$')", "/age", True),
    ("regex('aa', '(a)\\1')", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("regex('a', '(?=a)a')", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("regex('a', '[')", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("regex('x', '(a{1000}){1000}')", "/age", Reason.UNSUPPORTED_SYNTAX),
)
def test_regex(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


def test_regex_refuses_work_that_could_stall_the_server() -> None:
    long_text = Instance.from_dict({"text": "a " * 5_000}, root="data")
    started = time.perf_counter()
    result = check("regex(., '(\\w+\\s?){1,1000}x')", "/text", long_text)
    assert result == Reason.TOO_COMPLEX
    assert check("regex(., '[a ]+')", "/text", long_text) is True
    assert check("regex(., '" + "a" * 1_001 + "')", "/text", long_text) == Reason.TOO_COMPLEX
    assert time.perf_counter() - started < 1


# -- dates and times ----------------------------------------------------------------------------


@table(
    (". <= today()", "/visit", True),
    (". > today()", "/visit", False),
    ("today() - . = 58", "/visit", True),
    (". < '2026-01-03'", "/visit", True),
    (". = '2026-01-02'", "/visit", True),
    (". = today() - 58", "/visit", True),
    (". = date('2026-01-02')", "/visit", True),
    ("date(.) + 1 = date('2026-01-03')", "/visit", True),
    ("today() > /data/dob", "/age", True),
    ("(today() - /data/dob) div 365.25 >= 26", "/age", True),
    ("string(today()) = '2026-03-01'", "/age", True),
    ("date(0) = '1970-01-01'", "/age", True),
    ("date(20454) = date('2026-01-01')", "/age", True),
    ("date('') = ''", "/age", True),
    ("date(number('')) != date(number(''))", "/age", True),
    ("date(/data/started) = '2026-01-02'", "/age", True),
    ("/data/started < now()", "/age", True),
    ("now() >= today() and now() <= today()", "/age", True),
    ("/data/started >= date('2026-01-02') and /data/started < date('2026-01-03')", "/age", True),
    ("format-date(date(.), '%d/%m/%Y') = '02/01/2026'", "/visit", True),
    ("format-date(/data/started, '%Y-%m-%d %H:%M') = '2026-01-02 08:30'", "/age", True),
    ("format-date(/data/started, '%e %b %y, %h:%M:%S.%3 %a') = '2 Jan 26, 8:30:00.000 Fri'", "/age", True),
    ("format-date(/data/empty, '%Y') = ''", "/age", True),
    ("format-date(date-time(0.5), '%H') = '12'", "/age", True),
    ("format-date-time(now(), '%n/%Y') = '3/2026'", "/age", True),
    ("decimal-date-time('1970-01-02') = 1", "/age", True),
    ("decimal-date-time('1970-01-01T06:00:00.000Z') = 0.25", "/age", True),
    ("decimal-date-time('1970-01-01T06:00:00.000+06:00') = 0", "/age", True),
    ("decimal-time(/data/clock) = 0.25", "/age", True),
    ("decimal-time('12:00') = 0.5", "/age", True),
    ("format-date(today(), '%Q')", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("date('2026-02-30') = ''", "/age", Reason.TYPE_ERROR),
    ("date('soon') = ''", "/age", Reason.TYPE_ERROR),
    ("date(1 div 0) = ''", "/age", Reason.TYPE_ERROR),
    ("string(now()) != ''", "/age", Reason.TYPE_ERROR),
    ("/data/clock > '05:00'", "/age", Reason.TYPE_ERROR),
)
def test_dates(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


# -- what cannot be evaluated -------------------------------------------------------------------


@table(
    ("", "/age", Reason.PARSE_ERROR),
    ("1 +", "/age", Reason.PARSE_ERROR),
    ("(1", "/age", Reason.PARSE_ERROR),
    ("a b", "/age", Reason.PARSE_ERROR),
    ("'unterminated", "/age", Reason.PARSE_ERROR),
    ("1 = = 2", "/age", Reason.PARSE_ERROR),
    ("${age} > 1", "/age", Reason.PARSE_ERROR),
    ("foo()", "/age", Reason.UNKNOWN_FUNCTION),
    ("instance('c')/root/item[name = 'x']/label = 'X'", "/age", Reason.UNSUPPORTED_FUNCTION),
    ("pulldata('f', 'a', 'b', 'c') = 1", "/age", Reason.UNSUPPORTED_FUNCTION),
    ("jr:choice-name(/data/likes, '/data/likes') = 'Rice'", "/age", Reason.UNSUPPORTED_FUNCTION),
    ("uuid() != ''", "/age", Reason.UNSUPPORTED_FUNCTION),
    ("$x = 1", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("//age = 30", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("/data/household//age = 40", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("@id = 'x'", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("child::age = 30", "/age", Reason.UNSUPPORTED_SYNTAX),
    ("not()", "/age", Reason.TYPE_ERROR),
    ("substr('a')", "/age", Reason.TYPE_ERROR),
    ("count(1) = 1", "/age", Reason.TYPE_ERROR),
    ("sum('a') = 1", "/age", Reason.TYPE_ERROR),
    ("position(/data/nope) = 1", "/age", Reason.TYPE_ERROR),
    ("(1)[1] = 1", "/age", Reason.TYPE_ERROR),
    ("1/age = 1", "/age", Reason.TYPE_ERROR),
    ("1 | 2", "/age", Reason.TYPE_ERROR),
    ("not(" * 70 + "true()" + ")" * 70, "/age", Reason.TOO_COMPLEX),
    ("1" + " + 1" * (MAX_EXPRESSION_CHARS // 4), "/age", Reason.TOO_COMPLEX),
    (". = 1", "/household/member/name", Reason.BAD_CONTEXT),
    (". = 1", "/household/member[9]/name", Reason.BAD_CONTEXT),
    (". = 1", "/data/age", Reason.BAD_CONTEXT),
    (". = 1", "/age[x]", Reason.BAD_CONTEXT),
)
def test_what_cannot_be_evaluated_says_why(expression: str, context: str, expected: Expected) -> None:
    assert check(expression, context) == expected


def test_long_but_shallow_expressions_are_evaluated() -> None:
    assert check("(" * 2_000 + "1" + ")" * 2_000 + " = 1") is True
    assert check(" or ".join(["/data/age = 1"] * 300 + ["/data/age = 30"])) is True


def test_work_on_large_repeats_is_bounded() -> None:
    big = Instance.from_dict({"r": [{"a": i} for i in range(2_000)], "t": "x" * 10_000}, root="data")
    assert check("count(/data/r[a >= 1000]) = 1000", "/t", big) is True
    assert check("count(/data/r[count(/data/r[a > 5]) > 0]) > 0", "/t", big) == Reason.TOO_COMPLEX
    assert check("string-length(concat(" + ", ".join(["/data/t"] * 200) + ")) > 0", "/t", big) == (
        Reason.TOO_COMPLEX
    )


def test_today_given_as_a_datetime_is_its_date() -> None:
    result = evaluate_boolean("string(today()) = '2026-03-01'", INSTANCE, "/age", NOW, NOW)
    assert result is True


def test_values_of_any_python_type_become_answers() -> None:
    odd = Instance.from_dict(
        {"big": 10**400, "yes": True, "price": Decimal("2.50"), "tags": ["a", "b"]}, "data"
    )
    assert check("/data/big > 1000000", "/big", odd) is True
    assert check("/data/yes = 'true'", "/big", odd) is True
    assert check("/data/price = 2.5 and string(/data/price) = '2.5'", "/big", odd) is True
    assert check("count(/data/tags) = 2 and concat(/data/tags) = 'ab'", "/big", odd) is True


def test_not_evaluated_carries_a_detail_and_is_neither_true_nor_false() -> None:
    result = evaluate_boolean("foo(1)", INSTANCE, "/age", TODAY, NOW)
    assert result == NotEvaluated(Reason.UNKNOWN_FUNCTION, "foo() is not an ODK XPath function")
    with pytest.raises(TypeError):
        bool(result)


# -- the instance -------------------------------------------------------------------------------

SUBMISSION = b"""<?xml version="1.0"?>
<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" id="survey" version="3">
  <age>30</age>
  <zero>0</zero>
  <empty/>
  <likes>rice beans</likes>
  <visit>2026-01-02</visit>
  <household>
    <size>3</size>
    <member><name>A</name><age>40</age></member>
    <member><name>B</name><age>12</age></member>
  </household>
  <meta><orx:instanceID>uuid:1</orx:instanceID></meta>
</data>"""


@table(
    ("/data/age = 30 and . = 30", "/age", True),
    ("/data/household/member/age > 18", "/household/member[1]/name", True),
    ("/data/household/member/age > 18", "/household/member[2]/name", False),
    ("count(/data/household/member) = 2", "/age", True),
    ("selected(/data/likes, 'beans') and /data/visit <= today()", "/age", True),
    ("/data/meta/instanceID = 'uuid:1'", "/age", True),
    (". = ''", "/empty", True),
    ("boolean(/data/zero)", "/age", True),
)
def test_instance_from_submission_xml(expression: str, context: str, expected: Expected) -> None:
    instance = Instance.from_xml(etree.fromstring(SUBMISSION))
    assert instance.root_name == "data"
    assert check(expression, context, instance) == expected


def test_contexts_number_every_repeat_instance() -> None:
    repeats = {"/household/member", "/plots", "/plots/crop", "/visits"}
    assert INSTANCE.contexts("/age", repeats) == ["/age"]
    assert INSTANCE.contexts("/household/member/name", repeats) == [
        "/household/member[1]/name",
        "/household/member[2]/name",
        "/household/member[3]/name",
    ]
    assert INSTANCE.contexts("/plots/crop/kind", repeats) == [
        "/plots[1]/crop[1]/kind",
        "/plots[1]/crop[2]/kind",
        "/plots[2]/crop[1]/kind",
    ]
    assert INSTANCE.contexts("/visits/date", repeats) == []
    assert INSTANCE.contexts("/absent_group/field", repeats) == ["/absent_group/field"]


def test_every_context_of_a_field_evaluates() -> None:
    contexts = INSTANCE.contexts("/household/member/age", {"/household/member"})
    results = [check(". = '' or (. >= 0 and . < 120)", c) for c in contexts]
    assert results == [True, True, True]
    assert [check("string-length(.) > 0", c) for c in contexts] == [True, True, False]


# -- hostile input never raises -----------------------------------------------------------------

TOKENS = [
    ".",
    "..",
    "/",
    "//",
    "/data",
    "age",
    "household",
    "member",
    "name",
    "*",
    "@",
    "(",
    ")",
    "[",
    "]",
    ",",
    "|",
    "+",
    "-",
    "div",
    "mod",
    "=",
    "!=",
    "<",
    ">=",
    "and",
    "or",
    "'a'",
    "''",
    "1",
    "2.5",
    "count(",
    "concat(",
    "regex(",
    "'(a+)+$'",
    "today()",
    "now()",
    "date(",
    "selected(",
    "if(",
    "current()",
    "indexed-repeat(",
    "substr(",
    "round(",
    "format-date(",
    "'%Y'",
    "not(",
    "$x",
    "coalesce(",
    "sum(",
    "position(",
    "instance(",
    "jr:choice-name(",
    "translate(",
    "-1",
    "1e3",
]


def assert_safe(expression: str, context: str = "/age", instance: Instance = INSTANCE) -> None:
    result = evaluate_boolean(expression, instance, context, TODAY, NOW)
    assert isinstance(result, bool) or result.reason is not Reason.INTERNAL_ERROR, result


@settings(max_examples=250, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_raises(expression: str) -> None:
    assert_safe(expression)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join))
def test_random_token_sequences_never_raise(expression: str) -> None:
    assert_safe(expression, "/household/member[2]/name")


EXPRESSIONS = [
    ". > 0 and . < 120",
    ". <= today() and today() - . < 36500",
    "regex(., '^[0-9]+$')",
    "string-length(.) <= 10 and contains(., 'a')",
    "selected(., 'x') or count-selected(.) > 2",
    "format-date(., '%Y-%m') != '' and decimal-date-time(.) > 0",
    "substr(., 1, 3) = substring(., 2, 2) and int(.) = round(., 1)",
    "date(.) = today() or decimal-time(.) > 0.5",
    ". + 1 > . div 2 and . mod 3 = 1",
]
VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.dates().map(date.isoformat),
    st.datetimes().map(lambda d: d.isoformat()),
)


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(EXPRESSIONS), VALUES)
def test_any_answer_never_raises(expression: str, value: Any) -> None:
    assert_safe(expression, "/x", Instance.from_dict({"x": value}, root="data"))
