"""Rule definitions: what analysts write, what they are told when it is wrong, how it is stored."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sciti.risk.rules import RuleSyntaxError, canonical_yaml, compile_rule, parse_rule, render_reason
from sciti.risk.rules.condition import parse_condition

BASE = {
    "id": "R-1",
    "title": "t",
    "kind": "declaration",
    "when": "unit_value_ratio < 30%",
    "weight": 10,
    "reason": "r",
}


@pytest.mark.parametrize(
    ("when", "line", "column", "message", "remedy"),
    [
        ("unit_value_ratio <", 1, 19, "ends too early", "a number"),
        ("unit_value_ratio < 30% and", 1, 27, "ends too early", "a field name"),
        ("unit_value_ratio << 3", 1, 19, "unexpected '<'", "a number"),
        ("unit_value_ratio < 3 and\nhs6 = = '1'", 2, 7, "unexpected '='", "a quoted text"),
        ("hs6 in ('85', )", 1, 15, "unexpected ')'", "a quoted text"),
        ("unit_value_ratio ~ 3", 1, 18, "unexpected character '~'", "a comparison"),
        ("unit_valu_ratio < 3", 1, 1, "unknown name 'unit_valu_ratio'", "did you mean unit_value_ratio"),
        ("hs6 < 3", 1, 7, "hs6 (text) needs text, but 3 is number", "numbers with numbers"),
        ("aeo < 3", 1, 1, "'<' needs number or text or date, but aeo is bool", "same type"),
        ("net_mass_kg + hs6 > 1", 1, 15, "'+' needs number, but hs6 is text", "same type"),
        ("net_mass_kg", 1, 1, "is a number, not a yes/no test", "compare it"),
        ("hs6 between '1' and '2'", 1, 1, "'between' needs number or date", "same type"),
        ("net_mass_kg starts with '1'", 1, 1, "'starts with' needs text", "same type"),
        # Literal bounds in the wrong order: never true, so refused where the low bound stands.
        ("net_mass_kg between 10 and 1", 1, 21, "the low bound is above the high bound", "between 1 and 10"),
        (
            "net_mass_kg > 0 and\nnet_mass_kg between -1 and -5",
            2,
            22,
            "can never be true",
            "between -5 and -1",
        ),
        (
            "acceptance_date between date '2026-02-01' and date '2026-01-01'",
            1,
            30,
            "the low bound is above the high bound",
            "between date '2026-01-01' and date '2026-02-01'",
        ),
        ("acceptance_date > date '2026-02-30'", 1, 24, "'2026-02-30' is not a date", "year-month-day"),
        ("acceptance_date > '2026-02-01'", 1, 19, "but '2026-02-01' is text", "date '2026-01-31'"),
        ("", 1, 1, "is missing", "add `when:`"),
        ("  # only a comment", 1, 19, "ends too early", "a field name"),
        # Beyond the largest double a literal reads as infinity, which the SQL side cannot spell.
        ("net_mass_kg > 1e999 or net_mass_kg < 0", 1, 15, "'1e999' is too large a number", "smaller"),
        ("net_mass_kg > 0 or\nnet_mass_kg < -1e999", 2, 16, "'1e999' is too large", "is not missing"),
        ("net_mass_kg not in (1, -1e400)", 1, 25, "'1e400' is too large a number", "smaller"),
        ("unit_value_ratio < " + "9" * 400 + "%", 1, 20, "is too large a number", "smaller"),
    ],
)
def test_condition_errors_say_where_and_what_to_write(when, line, column, message, remedy) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule({**BASE, "when": when})
    err = caught.value
    assert (err.details["field"], err.details["line"], err.details["column"]) == ("when", line, column)
    assert message in err.message, err.message
    assert remedy in (err.remedy or ""), err.remedy
    assert err.http_status == 422


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"weight": None}, "weight", "either a weight or a lane"),
        ({"lane": "red"}, "weight", "either a weight or a lane"),
        ({"weight": 101}, "weight", "not a number from 0 to 100"),
        ({"weight": None, "lane": "purple"}, "lane", "not a lane"),
        ({"kind": "seizure"}, "kind", "not a record kind with risk rules"),
        ({"id": "has space"}, "id", "not a valid rule id"),
        ({"title": None}, "title", "is missing"),
        ({"reason": "Ratio {ratio}"}, "reason", "mentions {ratio}"),
        ({"reason": "Ratio {unit_value_ratio"}, "reason", "malformed"),
        # A reason is rendered for every hit: no 100 MB reasons, no formats Python cannot apply.
        ({"reason": "HS {hs6:>99999999}"}, "reason", "{hs6:>99999999} asks for a width of 99999999"),
        ({"reason": "{unit_value_ratio:.999f}"}, "reason", "asks for a precision of 999"),
        ({"reason": "{unit_value_ratio:0101,.21f}"}, "reason", "a width of 101 and a precision of 21"),
        ({"reason": "{hs6:{unit_value_ratio}}"}, "reason", "has a format Python cannot apply"),
        ({"reason": "{hs6:abc}"}, "reason", "has a format Python cannot apply"),
        # Reasons are shown unmasked on the queue: no person's data in them.
        (
            {"kind": "passenger", "when": "watchlist_hit", "reason": "Passenger {surname} {given_names}"},
            "reason",
            "{surname}, which is personal data",
        ),
        (
            {"kind": "currency_declaration", "when": "just_below_threshold", "reason": "{document_number}"},
            "reason",
            "{document_number}, which is personal data",
        ),
        ({"colour": "red"}, "colour", "is not a rule field"),
        (
            {"scope": {"procedures": ["A"]}, "kind": "consignment", "when": "packages > 1"},
            "scope",
            "no procedures",
        ),
        ({"scope": {"ports": ["A"]}}, "scope", "unknown scope 'ports'"),
        ({"valid_from": "2026-02-01", "valid_to": "2026-01-01"}, "valid_to", "ends before it starts"),
        ({"valid_from": "soon"}, "valid_from", "not a date"),
    ],
)
def test_field_errors_name_the_field(change, field, message) -> None:
    data = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(data)
    assert caught.value.details["field"] == field
    assert message in caught.value.message


def test_yaml_errors_carry_the_line_of_the_file() -> None:
    text = "id: R-1\ntitle: t\nkind: declaration\nwhen: [unclosed\nweight: 3\nreason: r\n"
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(text)
    assert caught.value.details["field"] == "yaml" and caught.value.details["line"] >= 4
    head = "id: R-1\ntitle: t\nkind: declaration\n"
    text = head + "when: |\n  net_mass_kg > 1\n  and hs6 = 3\nweight: 3\nreason: r\n"
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(text)
    assert (caught.value.details["line"], caught.value.details["rule_line"]) == (2, 4)
    assert parse_rule(head + "when: aeo\nlane: green\nreason: r\n").lane == "green"


def test_canonical_yaml_is_stable_and_reads_back_the_same() -> None:
    text = """\
reason: "Unit value {unit_value_ratio:.0%} of reference"
weight: 40
when: |
  unit_value_ratio < 30%   # far below the band
  and hs_chapter in ('61', '62')
scope: {procedures: ['4000'], offices: [KRINC]}
kind: declaration
valid_from: 2026-01-01
title: Undervalued clothing
id: R-CLOTH
"""
    rule = parse_rule(text, author="alice")
    canonical = canonical_yaml(rule)
    assert canonical.splitlines()[:3] == ["id: R-CLOTH", "title: Undervalued clothing", "kind: declaration"]
    assert parse_rule(canonical) == rule
    assert canonical_yaml(parse_rule(canonical)) == canonical
    assert rule.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert rule.scope == {"procedures": ("4000",), "offices": ("KRINC",)}


@pytest.mark.parametrize(
    ("template", "record", "text"),
    [
        ("Unit value {unit_value_ratio:.0%}", {"unit_value_ratio": 0.184}, "Unit value 18%"),
        ("Cash of {amount_national:,.0f}", {"amount_national": 9500.4}, "Cash of 9,500"),
        ("Importer {importer_id}", {}, "Importer unknown"),
        ("Ratio {unit_value_ratio:.0%}", {"unit_value_ratio": "n/a"}, "Ratio n/a"),
        ("On {acceptance_date}", {"acceptance_date": date(2026, 1, 31)}, "On 2026-01-31"),
        ("Braces {{literal}}", {}, "Braces {literal}"),
    ],
)
def test_reasons_quote_the_record_and_never_fail(template, record, text) -> None:
    assert render_reason(template, record) == text


@pytest.mark.parametrize(
    ("scope", "record", "in_scope"),
    [
        ({"offices": ["A", "B"]}, {"office_code": "A"}, True),
        ({"offices": ["A", "B"]}, {"office_code": "C"}, False),
        ({"offices": ["A"]}, {}, False),  # unknown office: out of scope
        ({"offices": ["A"], "procedures": ["4000"]}, {"office_code": "A", "procedure_code": "4000"}, True),
        ({"offices": ["A"], "procedures": ["4000"]}, {"office_code": "A", "procedure_code": "4071"}, False),
        ({"modes_of_transport": ["1"]}, {"mode_of_transport": "1"}, True),
        ({}, {}, True),
    ],
)
def test_scope(scope, record, in_scope) -> None:
    rule = compile_rule(parse_rule({**BASE, "scope": scope}), 1)
    assert rule.in_scope(record) is in_scope


def test_keywords_ignore_case_and_do_not_swallow_names() -> None:
    tree = parse_condition("NOT aeo AND hs6 IN ('85') Or android_count Is Missing")
    assert type(tree).__name__ == "BoolOp" and tree.op == "or"


@pytest.mark.parametrize(
    "reason",
    ["{unit_value_ratio:.0%}", "{item_price:,.0f}", "{hs6:>100}", "{hs6!s:^20.20}", "{net_mass_kg:+08.2f}"],
)
def test_reasons_within_the_format_bounds_are_accepted(reason) -> None:
    assert parse_rule({**BASE, "reason": reason}).reason == reason


def test_the_largest_finite_numbers_are_still_numbers() -> None:
    rule = compile_rule(parse_rule({**BASE, "when": "net_mass_kg > 1.7e308 or net_mass_kg < -1.7e308"}))
    assert "inf" not in rule.sql and rule.matches({"net_mass_kg": 1.8e308})


@pytest.mark.parametrize(
    "when",
    ["net_mass_kg between 1 and 10", "net_mass_kg between 5 and 5", "net_mass_kg between 1 and item_price"],
)
def test_bounds_in_order_or_computed_are_accepted(when) -> None:
    assert parse_rule({**BASE, "when": when}).when == when


def test_a_validity_time_with_an_offset_is_kept_in_utc() -> None:
    rule = parse_rule(
        {**BASE, "valid_from": "2026-11-24T16:00:00+02:00", "valid_to": "2026-11-25T00:00:00-08:00"}
    )
    assert rule.valid_from == datetime(2026, 11, 24, 14, tzinfo=UTC)
    text = canonical_yaml(rule)
    assert "valid_from: '2026-11-24T14:00:00Z'" in text and "valid_to: '2026-11-25T08:00:00Z'" in text
    assert "+02:00" not in text and parse_rule(text) == rule
