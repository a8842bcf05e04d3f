"""Real time reads text as ingest stores it (decision 0096): a record sent with untidy spelling
(`" cn"`, `"8471.30"`, `"usd"`, `"csqu 305438-3"`, `"pnr"`) scores as the tidy record does, and as
batch scores the row ingest stores for it: same score, lane, reasons and unknown codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from sciti.model import get_kind, load_codelists, make_record_id
from sciti.model.rules import check_value
from sciti.model.validate import validate_record
from sciti.risk import features
from sciti.risk.engine import Assessor, KindParts
from sciti.risk.engine.inputs import records_of, request_models
from sciti.risk.engine.ruleset import RuleSet
from sciti.risk.engine.subjects import REALTIME_SOURCE, SUBJECTS
from sciti.risk.rules import compile_rule, parse_rule
from tests.risk.engine.test_parity import COMPARED

REQUESTS = dict(zip(SUBJECTS, request_models(), strict=True))
ITEM_SKIPS = ("declaration_id", "declaration_version")  # an item takes them from its declaration

# Values the KCS rows lack, so that every kind of normalising is exercised (as ingest stores them).
EXTRA = {"transport_nationality": "KR", "invoice_currency": "USD", "loading_location": "CNSHA",
         "currency": "USD", "container_id": "CSQU3054383"}  # fmt: skip
# How a clearance system might spell each value: ingest stores all of them as the tidy value.
UNTIDY: dict[str, Callable[[str], str]] = {
    "country_of_origin": lambda v: f" {v.lower()}",
    "country_of_dispatch": str.lower,
    "transport_nationality": lambda v: f"\u3000{v.lower()}",
    "hs_code": lambda v: f"{v[:4]}.{v[4:]}",
    "invoice_currency": str.lower,
    "currency": lambda v: f"{v.lower()} ",
    "loading_location": lambda v: f"{v[:2].lower()} {v[2:]}",
    "container_id": lambda v: f"{v[:4].lower()} {v[4:10]}-{v[10:]}",
    "declaration_id": lambda v: f" {v}\t",  # a key field: the record id is still the stored one's
    "importer_id": lambda v: f"{v}\u00a0",
}


def field(name: str):
    kind = get_kind("declaration")
    return kind.field(name) if name in kind.field_names else get_kind("declaration_item").field(name)


def read(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the API hands the engine for ``record``: the request model's reading of it."""
    return records_of(REQUESTS[kind].model_validate({"kind": kind, "record": record}))[0]


def as_sent(row: dict[str, Any], spell: Callable[[str, Any], Any] = lambda _, v: v) -> dict[str, Any]:
    """A lake subject row as a clearance system sends it, each value spelt by ``spell``."""
    head = {f.name: spell(f.name, row[f.name]) for f in get_kind("declaration").fields}
    item = {
        f.name: spell(f.name, row[f.name])
        for f in get_kind("declaration_item").fields
        if f.name not in ITEM_SKIPS
    }
    item["record_id"] = row["record_id"]
    head |= {"source": row["source"], "record_id": row["declaration_record_id"]}
    return {k: v for k, v in head.items() if v is not None} | {
        "items": [{k: v for k, v in item.items() if v is not None}]
    }


def untidy(name: str, value: Any) -> Any:
    return UNTIDY[name](value) if name in UNTIDY and value is not None else value


def assert_same(mine: dict[str, Any], other: dict[str, Any], ref: str) -> None:
    for name in COMPARED:
        assert mine[name] == other[name], (name, ref, mine[name], other[name])
    assert json.loads(mine["factors"]) == json.loads(other["factors"])


def test_untidy_spelling_scores_as_the_tidy_one_and_as_batch(kcs, assessor, shared_data) -> None:
    codelists = load_codelists(shared_data / "codelists")
    recs = features.lake_records(kcs, "declaration")
    rows = [{**row, **EXTRA} for row in recs.slice(0, 300).to_pylist()]
    # What ingest stores for each untidy value: the tidy one, so batch scores the tidy row.
    stored_rows = []
    for row in rows:
        stored = dict(row)
        for name, spell in UNTIDY.items():
            stored[name], reason = check_value(field(name), spell(row[name]), codelists)
            assert reason is None, (name, reason)
        assert stored == row
        stored_rows.append(stored)
    table = pa.Table.from_pylist(stored_rows, schema=recs.schema)
    batch = {
        r["record_id"]: r for r in assessor.assess_batch("declaration", table, explain="all").to_pylist()
    }
    hits = 0
    for row in rows:
        sent = read("declaration", as_sent(row, untidy))
        assert sent == read("declaration", as_sent(row))  # the request model reads both alike
        (single,) = assessor.assess("declaration", [sent])
        (tidy,) = assessor.assess("declaration", [read("declaration", as_sent(row))])
        mine = single.to_row()
        assert_same(mine, tidy.to_row(), single.subject_ref)
        assert_same(mine, batch[single.record_id], single.subject_ref)
        hits += "T-CN-DUTY" in single.rule_ids  # the rule compares country_of_origin = 'CN'
    assert hits > 10


def test_untidy_unknown_codes_are_still_scored_as_unknown_codes(kcs, assessor) -> None:
    """A code outside its list is not refused: it is read in its stored spelling and scored with
    the unknown-code indicator, in real time as in batch (ingest would quarantine such a record,
    so its batch row is built here)."""
    recs = features.lake_records(kcs, "declaration")
    row = recs.slice(0, 1).to_pylist()[0] | EXTRA
    tidy = row | {"hs_code": "999999", "country_of_origin": "ZZ", "invoice_currency": "XXY"}
    sent = as_sent(row | {"hs_code": "9999.99", "country_of_origin": " zz", "invoice_currency": "xxy"})
    assert read("declaration", sent) == read("declaration", as_sent(tidy))  # codes as stored
    table = pa.Table.from_pylist([tidy], schema=recs.schema)
    (other,) = assessor.assess_batch("declaration", table, explain="all").to_pylist()
    (single,) = assessor.assess("declaration", [read("declaration", sent)])
    (same,) = assessor.assess("declaration", [read("declaration", as_sent(tidy))])
    assert single.unknown_codes == ["invoice_currency", "hs_code", "country_of_origin"]
    assert_same(single.to_row(), other, single.subject_ref)
    assert_same(single.to_row(), same.to_row(), single.subject_ref)
    assert "Item 1: Unknown code in hs_code (999999): scored as unknown" in single.reasons


# Other kinds: enumerated values (any case), codes and references, with a rule on each kind that
# compares the stored spelling, so a value read otherwise would change the score.
ENUMERATED = [
    (
        "passenger",
        "data_type = 'PNR' and gender = 'F' and nationality = 'CN' and document_country = 'HK'",
        {"record_ref": "R1", "voyage_id": "CX100-20240501", "departure_date": "2024-05-01",
         "surname": "LEE", "data_type": "PNR", "gender": "F", "nationality": "CN",
         "document_country": "HK", "is_crew": False},
        {"record_ref": " R1", "data_type": "pnr", "gender": " f", "nationality": "cn",
         "document_country": "Hk\u00a0"},
    ),
    (
        "currency_declaration",
        "direction = 'OUT' and instrument_type = 'cash' and currency = 'USD' and nationality = 'CN'",
        {"declaration_number": "C1", "declared_at": "2024-05-01T08:00:00Z", "direction": "OUT",
         "instrument_type": "cash", "amount": 9500, "currency": "USD", "record_type": "declaration",
         "carrier_type": "person", "nationality": "CN", "country_of_destination": "HK"},
        {"direction": "out", "instrument_type": "CASH", "currency": "usd ", "record_type": "Declaration",
         "carrier_type": "PERSON", "nationality": " cn", "country_of_destination": "hk"},
    ),
    (
        "consignment",
        "document_type = 'air_waybill' and hs_code = '847130' and consignor_country = 'CN'"
        " and loading_location = 'CNSHA'",
        {"manifest_id": "M1", "transport_document": "AWB1", "document_type": "air_waybill",
         "hs_code": "847130", "consignor_country": "CN", "loading_location": "CNSHA",
         "discharge_location": "HKHKG"},
        {"transport_document": "AWB1 ", "document_type": "Air_Waybill", "hs_code": "8471.30",
         "consignor_country": "cn", "loading_location": "cn sha", "discharge_location": "hk hkg"},
    ),
]  # fmt: skip


def ingested(kind: str, record: dict[str, Any], shared_data) -> tuple[dict, list]:
    """Ingest's reading of one record (``validate_record``): typed values and problems."""
    return validate_record(get_kind(kind), record, load_codelists(shared_data / "codelists"))


@pytest.mark.parametrize(("kind", "when", "tidy", "spelt"), ENUMERATED, ids=[c[0] for c in ENUMERATED])
def test_enumerated_values_in_any_case_score_as_stored(kcs, assessor, shared_data, kind, when, tidy, spelt):
    rule = parse_rule({"id": "T-SPELT", "title": "Spelt as stored", "kind": kind, "when": when,
                       "weight": 40, "reason": "Spelt as stored"})  # fmt: skip
    scoring = Assessor(
        policy=assessor.policy,
        reference=assessor.reference,
        parts_by_kind={kind: KindParts(RuleSet(kind, [compile_rule(rule, 1)]), None, None)},
    )
    # Ingest stores the untidy record as the tidy one; batch scores that row.
    stored, problems = ingested(kind, tidy | spelt, shared_data)
    assert not problems, problems
    assert stored == ingested(kind, tidy, shared_data)[0]
    key = [stored[k] for k in get_kind(kind).key]
    row = stored | {"record_id": make_record_id(kind, REALTIME_SOURCE, *key), "record_date": date(2024, 5, 1)}
    table = pa.Table.from_pylist([row], schema=features.lake_records(kcs, kind).schema)
    (other,) = scoring.assess_batch(kind, table, explain="all").to_pylist()

    sent = read(kind, tidy | spelt)
    assert sent == read(kind, tidy)
    (single,) = scoring.assess(kind, [sent])
    assert single.rule_ids == ["T-SPELT"], single.reasons
    assert_same(single.to_row(), other, single.subject_ref)
