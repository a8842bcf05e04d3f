"""A reason's ``{national_currency}`` and ``{cash_reporting_threshold}`` say the settings' values,
in batch and real time alike, in the English and in the reason codes (decision 0111)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sciti.acquire import Runner, load_connector
from sciti.ops import migrate, session_scope
from sciti.risk import features, rules
from sciti.risk.engine import Assessor
from sciti.risk.features.national import National
from sciti.risk.rules import compile_rule, parse_rule, starter_rule_texts
from sciti.risk.rules.errors import RuleSyntaxError
from tests.conftest import make_settings
from tests.risk.engine.test_parity import COMPARED
from tests.risk.rules.conftest import add_people

EUR = National("EUR", Decimal(10_000))
CASH = {"amount_national": 9_600.0, "currency": "USD", "threshold_ratio": 0.96}
QUOTED = {
    "id": "T-THRESHOLD-01",
    "title": "Near the threshold",
    "kind": "currency_declaration",
    "when": "threshold_ratio >= 0.9",
    "weight": 5,
    "reason": "{amount_national:,.0f} of {national_currency} {cash_reporting_threshold:,.0f} "
    "({cash_reporting_threshold}); {{literal}}",
}


@pytest.mark.parametrize(
    ("national", "text"),
    [
        (None, "9,600 of HKD 120,000 (120000); {literal}"),
        (EUR, "9,600 of EUR 10,000 (10000); {literal}"),
        (National("CHF", Decimal("10000.5")), "9,600 of CHF 10,000 (10000.5); {literal}"),
    ],
)
def test_the_placeholders_say_the_settings(national: National | None, text: str) -> None:
    rule = parse_rule(QUOTED)
    compiled = compile_rule(rule) if national is None else compile_rule(rule, national=national)
    assert compiled.reason(CASH) == text
    assert rule.reason.startswith("{amount_national:,.0f} of {national_currency}")  # as the analyst wrote it


def test_a_starter_reason_names_the_configured_currency() -> None:
    rule = compile_rule(parse_rule(starter_rule_texts()["cash-structuring.yaml"]), national=EUR)
    assert rule.reason(CASH) == "Cash worth EUR 9,600 (carried in USD) is 96% of the reporting threshold"


def test_an_unknown_placeholder_is_refused_naming_the_ones_there_are() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_rule(
            {**QUOTED, "reason": QUOTED["reason"].replace("{national_currency}", "{national_currancy}")}
        )
    message = str(caught.value)
    assert "{national_currancy}, which is not a field or feature" in message
    assert "{national_currency}" in message and "{cash_reporting_threshold}" in message


# Currency declarations of an instance whose national currency is the euro (demo-currency's columns).
HEADER = (
    "declaration_number,declared_at,control_point,record_type,direction,carrier_type,person_name,"
    "nationality,document_type,document_number,instrument_type,amount,currency,amount_national,"
    "origin_of_funds,intended_use"
)
CBNI = "\n".join(
    [HEADER]
    + [
        f"EU{i},2026-04-01T0{i}:00:00Z,FRA,declaration,in,person,,,passport,D{i % 2},cash,{line},,"
        for i, line in enumerate(["9600,EUR,9600", "10500,USD,9950.5", "500,EUR,500"])
    ]
)


@pytest.fixture(scope="module")
def eur_instance(tmp_path_factory):
    home = tmp_path_factory.mktemp("eur") / "instance"
    home.mkdir()
    s = make_settings(home, national_currency="EUR", cash_reporting_threshold=10_000)
    migrate(s.resolved_ops_db_url)
    add_people(s)
    folder = tmp_path_factory.mktemp("cbni")
    (folder / "cbni.csv").write_text(CBNI, encoding="utf-8")
    (result,) = Runner(s).ingest_path(load_connector(s, "demo-currency"), folder)
    assert result.status == "committed" and result.stored == 3, result
    rules.clear_cache()
    with session_scope(s.resolved_ops_db_url) as session:
        for text in (starter_rule_texts()["cash-structuring.yaml"], QUOTED):  # YAML and a mapping
            version = rules.create_rule(session, text, actor="alice")
            rules.submit(session, version.rule_id, version.version, actor="alice")
            rules.approve(session, version.rule_id, version.version, actor="bob")
    features.save_reference(s, features.build_reference(s))
    yield s
    rules.clear_cache()


def test_batch_and_real_time_say_the_configured_currency_alike(eur_instance) -> None:
    assessor = Assessor.load(eur_instance, kinds=("currency_declaration",), rules_only=True)
    table = features.lake_records(eur_instance, "currency_declaration")
    batch = assessor.assess_batch("currency_declaration", table, explain="none").to_pylist()
    by_id = {r["record_id"]: r for r in batch}
    said = []
    for record in table.to_pylist():
        sent = {k: float(v) if isinstance(v, Decimal) else v for k, v in record.items()}
        (single,) = assessor.assess("currency_declaration", [sent])
        mine = single.to_row()
        for name in COMPARED:
            assert mine[name] == by_id[mine["record_id"]][name], name
        said += mine["reasons"]
    rule = "(rule CASH-BELOW-THRESHOLD-01 v1, +35)"
    assert f"Cash worth EUR 9,600 (carried in EUR) is 96% of the reporting threshold {rule}" in said
    assert f"Cash worth EUR 9,950 (carried in USD) is 100% of the reporting threshold {rule}" in said
    assert "9,950 of EUR 10,000 (10000); {literal} (rule T-THRESHOLD-01 v1, +5)" in said
    assert not any("HKD" in line or "None" in line for line in said), said
