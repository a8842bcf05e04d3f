"""validate_record: coercion, required fields, code lists, identifiers and reasons, one value at a time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sciti.model import CodeLists, Problem, RecordKind, get_kind, validate_record
from sciti.model.rules import HS_EDITION_NOTE

UTC = dt.UTC

GOOD = [
    ("n", "42", 42),
    ("n", " -7 ", -7),
    ("n", "+7", 7),
    ("n", "12.00", 12),
    ("n", 12.0, 12),
    ("x", "1e3", 1000.0),
    ("x", ".5", 0.5),
    ("amount", "12.34565", Decimal("12.3456")),  # half to even
    ("amount", "12.34575", Decimal("12.3458")),
    ("amount", "-0.00005", Decimal("0.0000")),
    ("amount", 3, Decimal("3.0000")),
    ("flag", "Yes", True),
    ("flag", "0", False),
    ("flag", "F", False),
    ("day", "2024-02-29", dt.date(2024, 2, 29)),
    ("day", "20240229", dt.date(2024, 2, 29)),
    ("at", "2024-05-01T08:30:00Z", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("at", "2024-05-01 08:30", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),  # naive = UTC
    ("at", "2024-05-01T10:30:00+02:00", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("at", "2024-05-01T10:30:00.1234567+0200", dt.datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC)),
    ("at", "202405010830", dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),  # EDIFACT 203
    ("at", dt.datetime(2024, 5, 1, 8, 30), dt.datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("hs", "8471.30", "847130"),
    ("hs", "0101 21 00 00", "0101210000"),
    ("country", " kr\u3000", "KR"),
    ("currency", "usd", "USD"),
    ("place", "CN SHA", "CNSHA"),
    ("place", "krpus", "KRPUS"),
    ("container", "csqu 305438-3", "CSQU3054383"),
    ("imo", "IMO 9074729", "9074729"),
    ("direction", "in", "IN"),
    ("short", "abcde", "abcde"),
]


@pytest.mark.parametrize(("field", "raw", "expected"), GOOD)
def test_good_values(every_kind: RecordKind, codelists: CodeLists, field: str, raw, expected) -> None:
    values, problems = validate_record(every_kind, {"ref": "R1", field: raw}, codelists)
    assert problems == []
    assert values[field] == expected
    assert type(values[field]) is type(expected)


BAD = [
    ("n", "abc", "'abc' is not a whole number"),
    ("n", "1.5", "'1.5' is not a whole number"),
    ("n", "1000000000000000000", "too large"),
    ("x", "nan", "'nan' is not a number"),
    ("x", "1e999", "not a finite number"),
    ("x", "1,5", "'1,5' is not a number"),
    ("amount", "12,50", "is not an amount"),
    ("amount", "100000000000000", "too large for an amount"),
    ("flag", "maybe", "not a yes/no value"),
    ("day", "2023-02-29", "not a valid date"),
    ("day", "2024-1-5", "not a valid date"),
    ("at", "2024-05-01T24:00:00", "not a valid date and time"),
    ("at", "yesterday", "not a valid date and time"),
    ("hs", "999999", "HS code '999999' is not in the HS 2022 nomenclature (" + HS_EDITION_NOTE + ")"),
    ("hs", "8471", "HS code '8471' has fewer than 6 digits"),
    ("hs", "8471-30", "HS code '8471-30' must contain digits only"),
    ("country", "XX", "'XX' is not an ISO 3166 country code"),
    ("currency", "EURO", "'EURO' is not an ISO 4217 currency code"),
    ("place", "QQABC", "UN/LOCODE 'QQABC' names 'QQ', which is not a UN/LOCODE country"),
    ("place", "CNSH", "is not a UN/LOCODE"),
    ("place", "CNSH1", "is not a UN/LOCODE"),  # digits 0 and 1 are not used in UN/LOCODE
    ("container", "CSQU3054384", "check digit"),
    ("imo", "9074728", "check digit"),
    ("direction", "sideways", "'sideways' is not one of: IN, OUT"),
    ("short", "abcdef", "is 6 characters long; at most 5 are allowed"),
    ("mass", "-5", "'-5' is less than 0, the smallest allowed"),
    ("mass", -0.5, "'-0.5' is less than 0, the smallest allowed"),
    ("count", "-1", "'-1' is less than 0, the smallest allowed"),
    ("price", "-0.0001", "'-0.0001' is less than 0, the smallest allowed"),
    ("lat", "90.5", "'90.5' is more than 90, the largest allowed"),
    ("lat", "-91", "'-91' is less than -90, the smallest allowed"),
]


@pytest.mark.parametrize(("field", "raw", "reason"), BAD)
def test_bad_values(every_kind: RecordKind, codelists: CodeLists, field: str, raw, reason: str) -> None:
    values, problems = validate_record(every_kind, {"ref": "R1", field: raw}, codelists)
    assert len(problems) == 1
    assert problems[0].field == field
    assert reason in problems[0].reason
    assert problems[0].value == raw
    assert values[field] is None


@pytest.mark.parametrize(
    ("field", "raw", "reason"),
    [
        ("short", "a" * 1_000_000, "is 1000000 characters long; at most 5 are allowed"),
        ("n", "9" * 1_000_000, "is too large for a whole-number field"),  # not a crash
        ("n", "9.5" * 1_000_000, "is not a whole number"),
        ("x", "9" * 1_000_000, "is not a finite number"),
        ("amount", "9" * 1_000_000, "is too large for an amount field"),
        ("country", "Z" * 1_000_000, "is not an ISO 3166 country code"),
    ],
)
def test_a_hostile_value_is_quoted_short_in_its_reason(
    every_kind: RecordKind, codelists: CodeLists, field: str, raw: str, reason: str
) -> None:
    """The reason a person reads quotes the start of the value; the whole value stays in the problem."""
    _, (problem,) = validate_record(every_kind, {"ref": "R1", field: raw}, codelists)
    assert problem.reason.startswith(f"'{raw[:60]}…' ") and reason in problem.reason
    assert len(problem.reason) < 200 and problem.value == raw


@pytest.mark.parametrize("empty", [None, "", "   ", "\u3000"])
def test_required_and_empty(every_kind: RecordKind, codelists: CodeLists, empty) -> None:
    values, problems = validate_record(every_kind, {"ref": empty, "n": empty}, codelists)
    assert problems == [Problem("ref", "a value is required", empty)]
    assert values["n"] is None


def test_unknown_keys_with_values_are_problems(every_kind: RecordKind, codelists: CodeLists) -> None:
    _, problems = validate_record(
        every_kind,
        {"ref": "R1", "colour": "red", "empty_extra": "", "record_id": "abc", "locator": "l"},
        codelists,
    )
    assert problems == [Problem("colour", "'colour' is not a field of record kind 'every'", "red")]


def test_problems_follow_field_order(every_kind: RecordKind, codelists: CodeLists) -> None:
    _, problems = validate_record(every_kind, {"extra": 1, "imo": "1", "n": "x"}, codelists)
    assert [p.field for p in problems] == ["ref", "n", "imo", "extra"]


def test_real_declaration_item(codelists: CodeLists) -> None:
    kind = get_kind("declaration_item")
    raw = {
        "declaration_id": "97061800",
        "declaration_version": "1",
        "item_number": "1",
        "hs_code": "440890",
        "country_of_origin": "BE",
        "net_mass_kg": "108.0",
        "item_price": "372254.4",
        "duty_rate": "0.0",
    }
    values, problems = validate_record(kind, raw, codelists)
    assert problems == []
    assert values["item_price"] == Decimal("372254.4000")
    assert set(values) == set(kind.field_names)
