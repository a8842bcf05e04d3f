"""Starter rules' reasons name the currency of every amount they quote, and read the same in batch
and real time, a missing currency included (decision 0106).

An item price is in the item's own currency (``currency``); ``amount_national`` is in the national
currency, which a reason names by the ``{national_currency}`` placeholder: the setting, HKD by
default (decision 0111). The KCS files name no currency, so their reasons must still read well.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pyarrow as pa
import pytest

from sciti.acquire import Runner, load_connector
from sciti.model import get_kind
from sciti.ops import migrate, session_scope
from sciti.risk import features, rules
from sciti.risk.engine import Assessor
from sciti.risk.rules import compile_rule, load_starter_rules, parse_rule, starter_rule_texts
from tests.conftest import make_settings
from tests.risk.engine.test_parity import COMPARED
from tests.risk.rules.conftest import add_people

CASH = {"amount_national": Decimal("110600.0000"), "currency": "USD", "control_point": "HKIA",
        "instrument_type": "cash", "threshold_ratio": 0.9217, "person_near_threshold_90d": 2.0}  # fmt: skip
GOODS = {"net_mass_kg": 2000.0, "item_price": Decimal("100.0000")}


@pytest.mark.parametrize(
    ("file", "record", "text"),
    [
        ("decl-kcs-net-mass-price.yaml", {**GOODS, "currency": "USD"},
         "2,000 kg declared at a total item price of 100.00 (currency USD)"),
        # KCS: no currency in the files. The sentence still reads, and says so.
        ("decl-kcs-net-mass-price.yaml", GOODS,
         "2,000 kg declared at a total item price of 100.00 (currency unknown)"),
        ("cash-large-check.yaml", CASH,
         "Cash worth HKD 110,600 (carried in USD) found on a check at HKIA, not declared"),
        ("cash-structuring.yaml", CASH,
         "Cash worth HKD 110,600 (carried in USD) is 92% of the reporting threshold"),
        ("cash-repeated-structuring.yaml", {**CASH, "instrument_type": "travellers_cheque"},
         "HKD 110,600 (travellers_cheque in USD) just below the reporting threshold; "
         "2 more near-threshold movements by the same person in 90 days"),
    ],
)  # fmt: skip
def test_starter_reasons_name_the_currency(file: str, record: dict, text: str) -> None:
    rule = compile_rule(parse_rule(starter_rule_texts()[file]))
    assert rule.reason(record) == text


# Amount fields and how a reason must name their currency: by the field that holds it, or as the
# national currency (the placeholder the settings fill in, never a currency written in the rule).
IN_FIELD = {("declaration", "item_price"): "currency", ("declaration", "invoice_amount"): "invoice_currency",
            ("currency_declaration", "amount"): "currency"}  # fmt: skip
NATIONAL = r"\{national_currency\}"


def _amounts(kind: str) -> set[str]:
    """The kind's money fields: decimals whose description names a currency (model YAML), but not
    the exchange rate between two of them."""
    kinds = [get_kind(kind)] + ([get_kind("declaration_item")] if kind == "declaration" else [])
    return {
        f.name
        for k in kinds
        for f in k.fields
        if f.type == "decimal"
        and "currency" in (f.description or "").lower()
        and not f.name.endswith("_rate")
    }


@pytest.mark.parametrize("rule", load_starter_rules(), ids=lambda r: r.id)
def test_every_amount_a_starter_reason_quotes_names_its_currency(rule) -> None:
    """A guard for rules added later: an amount beside no currency is a number an officer cannot act on."""
    amounts = _amounts(rule.kind)
    assert amounts >= ({"item_price", "customs_value"} if rule.kind == "declaration" else set())
    for name in re.findall(r"\{(\w+)[^}]*\}", rule.reason):
        if name not in amounts:
            continue
        field = IN_FIELD.get((rule.kind, name))
        if field is not None:
            assert "{" + field + "}" in rule.reason, f"{rule.id}: {{{name}}} without {{{field}}}"
        else:  # customs values, duties, amount_national: the national currency
            assert re.search(rf"{NATIONAL} \{{{name}[:}}]", rule.reason), f"{rule.id}: {{{name}}}"
    assert "HKD" not in rule.reason, f"{rule.id}: write {{national_currency}}, the setting, not HKD"


# -- the engine: batch and real time say the same -------------------------------------------------

WORDED = ("DECL-LOWPRICE-HEAVY-01", "CASH-LARGE-FOUND-01", "CASH-BELOW-THRESHOLD-01")


@pytest.fixture(scope="module")
def starter_instance(tmp_path_factory, shared_data, tiny_world):
    """KCS declarations (no currency) and the tiny world's currency records, with every starter
    rule approved: the rules the engine loads are the stored ones."""
    home = tmp_path_factory.mktemp("starter-reasons") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    add_people(s)
    for connector, path in (
        ("kcs", shared_data / "kcs" / "valid.csv"),
        ("demo-currency", tiny_world.out / "currency"),
    ):
        for result in Runner(s).ingest_path(load_connector(s, connector), path):
            assert result.status == "committed", result
    rules.clear_cache()
    with session_scope(s.resolved_ops_db_url) as session:
        for text in starter_rule_texts().values():
            version = rules.create_rule(session, text, actor="alice")
            rules.submit(session, version.rule_id, version.version, actor="alice")
            rules.approve(session, version.rule_id, version.version, actor="bob")
    features.save_reference(s, features.build_reference(s))
    return s


def _as_sent(row: dict) -> dict:
    """A lake row as the API receives it: decimals are JSON numbers."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _compare(assessor: Assessor, kind: str, table: pa.Table, send) -> list[str]:
    """Every record a starter rule hits, assessed in batch and one by one: the same words. Returns
    the reasons of the worded rules."""
    batch = assessor.assess_batch(kind, table, explain="none").to_pylist()
    hit = [r for r in batch if set(r["rule_ids"] or []) & set(WORDED)]
    by_subject = {send(r)["record_id"]: r for r in table.to_pylist()}  # what real time is sent
    said: list[str] = []
    for other in hit:
        (single,) = assessor.assess(kind, [send(by_subject[other["record_id"]])])
        mine = single.to_row()
        for name in COMPARED:
            assert mine[name] == other[name], (name, single.subject_ref, mine[name], other[name])
        said += [r for r in mine["reasons"] if any(f"rule {w} " in r for w in WORDED)]
    return said


def test_starter_reasons_read_alike_in_batch_and_real_time(starter_instance) -> None:
    assessor = Assessor.load(starter_instance, kinds=("declaration", "currency_declaration"), rules_only=True)
    recs = features.lake_records(starter_instance, "declaration")
    # A KCS item names no currency; give every other row one, as a clearance system would send it.
    rows = recs.to_pylist()
    for i, row in enumerate(rows):
        row["currency"] = "USD" if i % 2 else None
    decls = pa.Table.from_pylist(rows, schema=recs.schema)

    def declaration(row: dict) -> dict:
        sent = _as_sent(row)
        return {**sent, "record_id": row["declaration_record_id"], "items": [sent]}

    goods = _compare(assessor, "declaration", decls, declaration)
    assert any("(currency USD) (rule DECL-LOWPRICE-HEAVY-01 " in r for r in goods), goods[:3]
    assert any("(currency unknown) (rule DECL-LOWPRICE-HEAVY-01 " in r for r in goods), goods[:3]
    assert all(
        re.match(r"Item 1: [\d,]+ kg declared at a total item price of [\d,]+\.\d\d ", r) for r in goods
    )

    cash = _compare(
        assessor,
        "currency_declaration",
        features.lake_records(starter_instance, "currency_declaration"),
        _as_sent,
    )
    for rule_id in ("CASH-LARGE-FOUND-01", "CASH-BELOW-THRESHOLD-01"):
        worded = [r for r in cash if f"(rule {rule_id} " in r]
        assert worded, f"{rule_id} hit no tiny-world record: the comparison did not cover it"
        assert all(re.match(r"Cash worth HKD [\d,]+ \(carried in [A-Z]{3}\) ", r) for r in worded), worded[:3]
