"""Values a record is assessed with are the values ingest would store (decisions 0093 and 0096):
text that cannot be stored is refused by name (not a 500), numbers are JSON numbers and yes/no
fields JSON booleans, goods items are numbered from 1 and once, a blank code is no code, and codes
and enumerated values are spelt as ingest stores them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sciti.access import create_user
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.risk import rules
from sciti.risk.engine.subjects import SUBJECTS
from tests.api.conftest import assert_envelope, bearer
from tests.risk.engine.conftest import approve

ASSESS = "/api/v1/risk/assess"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "risk-engine.md"
# What a raw body carries for a lone surrogate: JSON's escape, which Python's json.dumps keeps.
SURROGATE = "\ud800"


def fields(kind: str) -> list:
    """The fields a record of ``kind`` is sent with (a goods item's in ``items``)."""
    if kind == "declaration_item":
        return [f for f in get_kind(kind).fields if f.name not in ("declaration_id", "declaration_version")]
    return list(get_kind(kind).fields)


def minimal(kind: str) -> dict:
    """A valid record of ``kind``: its required fields only (and one goods item for a declaration)."""
    sample = {"string": "X1", "int": 1, "float": 1, "decimal": 1, "date": "2021-01-01", "bool": False,
              "timestamp": "2021-01-01T08:00:00Z"}  # fmt: skip
    record = {f.name: (f.values or [sample[f.type]])[0] for f in fields(kind) if f.required}
    if kind == "declaration":
        record["items"] = [{"item_number": 1}]
    return record


def post(client, headers, kind: str, record: dict):
    body = json.dumps({"kind": kind, "record": record})  # ensure_ascii: the surrogate goes as \ud800
    return client.post(ASSESS, content=body, headers={**headers, "Content-Type": "application/json"})


def refused(response) -> dict[str, str]:
    """Field path -> error type of a 422, without the request's union prefix."""
    err = assert_envelope(response, 422, "validation_error")
    return {f["field"].split(".record.", 1)[-1]: f["type"] for f in err["details"]["fields"]}


def test_text_that_cannot_be_stored_is_refused_field_by_field_in_every_kind(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    for kind in SUBJECTS:
        record = minimal(kind)
        texts = [f.name for f in fields(kind) if f.type == "string"]
        record.update({name: f"A{SURROGATE}" for name in texts})
        record["source"] = SURROGATE
        expected = {name: "string_unicode" for name in [*texts, "source"]}
        if kind == "declaration":
            item_texts = [f.name for f in fields("declaration_item") if f.type == "string"]
            record["items"] = [{"item_number": 1, **{name: SURROGATE for name in item_texts}}]
            expected |= {f"items.0.{name}": "string_unicode" for name in item_texts}
        assert refused(post(client, headers, kind, record)) == expected, kind
        # A control: the same record without the surrogates is assessed.
        assert post(client, headers, kind, minimal(kind)).status_code == 200, kind


def test_the_reviewers_fields_answer_422_not_500(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    cases = [("declaration", name) for name in ("importer_id", "declarant_id", "transport_document")]
    cases += [("consignment", "loading_location"), ("consignment", "transport_document")]
    for kind, name in cases:
        r = post(client, headers, kind, minimal(kind) | {name: SURROGATE})
        assert refused(r) == {name: "string_unicode"}, (kind, name, r.text)
        assert "surrogate" in r.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true or false"), (False, "true or false"), ("12.5", "text"), ("3", "text")],
)
def test_numbers_must_be_json_numbers_in_every_kind(client, token_for, value, expected) -> None:
    headers = bearer(token_for("clearance_system"))
    for kind in SUBJECTS:
        numeric = {f.name: f.type for f in fields(kind) if f.type in ("int", "float", "decimal")}
        record = minimal(kind) | dict.fromkeys(numeric, value)
        types = {name: "int_type" if t == "int" else "float_type" for name, t in numeric.items()}
        if kind == "declaration":
            item = {
                f.name: f.type for f in fields("declaration_item") if f.type in ("int", "float", "decimal")
            }
            record["items"] = [dict.fromkeys(item, value)]
            types |= {f"items.0.{n}": "int_type" if t == "int" else "float_type" for n, t in item.items()}
        r = post(client, headers, kind, record)
        assert refused(r) == types, (kind, r.text)
        assert f"not {expected}" in r.text


def test_what_clearance_systems_send_is_still_assessed(client, token_for) -> None:
    """Whole numbers where a decimal is expected, in every kind, and the documented example."""
    headers = bearer(token_for("clearance_system"))
    for kind in SUBJECTS:
        numeric = [f.name for f in fields(kind) if f.type in ("int", "float", "decimal")]
        record = minimal(kind) | dict.fromkeys(numeric, 2)
        if kind == "declaration":
            item = [f.name for f in fields("declaration_item") if f.type in ("int", "float", "decimal")]
            record["items"] = [dict.fromkeys(item, 2), {"item_number": 3, "net_mass_kg": 2.5}]
        r = post(client, headers, kind, record)
        assert r.status_code == 200, (kind, r.text)
    text = DOCS.read_text(encoding="utf-8")
    (body,) = re.findall(r"-d '(\{\"kind\": \"declaration\".*?\})'\n", text, flags=re.S)
    r = client.post(ASSESS, content=body, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_a_true_mass_no_longer_passes_for_one_kilogram(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    item = {"item_number": 1, "hs_code": "760711", "net_mass_kg": True, "item_price": 41509.27}
    r = post(client, headers, "declaration", minimal("declaration") | {"items": [item]})
    assert refused(r) == {"items.0.net_mass_kg": "float_type"}


def test_goods_items_are_numbered_from_one_and_once(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    for number in (-1, 0):
        record = minimal("declaration") | {"items": [{"item_number": 1}, {"item_number": number}]}
        assert refused(post(client, headers, "declaration", record)) == {
            "items.1.item_number": "greater_than_equal"
        }
    items = [{"item_number": 1}, {"item_number": 2}, {"item_number": 1}, {"item_number": 2}]
    r = post(client, headers, "declaration", minimal("declaration") | {"items": items})
    assert refused(r) == {
        "items.2.item_number": "duplicate_item_number",
        "items.3.item_number": "duplicate_item_number",
    }
    assert "item_number 1 is also the number of items[0]" in r.text
    # Numbers need not be consecutive nor sent in order.
    items = [{"item_number": 7}, {"item_number": 2}]
    assert post(client, headers, "declaration", minimal("declaration") | {"items": items}).status_code == 200


def test_a_blank_code_is_no_code(client, token_for, api_settings) -> None:
    """As ingest stores blank text as null: rules see it missing, reasons read "unknown"."""
    with session_scope(api_settings.resolved_ops_db_url) as session:
        create_user(session, "alice", ["analyst"], service=True)
        create_user(session, "bob", ["supervisor"], service=True)
    rules.clear_cache()
    approve(
        api_settings,
        {"id": "T-BLANK", "title": "Duty without a procedure", "kind": "declaration",
         "when": "duty_rate > 8 and procedure_code is missing", "weight": 30,
         "reason": "Duty {duty_rate}% under procedure {procedure_code} for HS {hs_code}"},
    )  # fmt: skip
    headers = bearer(token_for("clearance_system"))
    answers = []
    for blank in (None, "", "  ", "\u3000"):
        item: dict = {"item_number": 1, "duty_rate": 9.0}
        head: dict = {}
        if blank is not None:
            item |= {"procedure_code": blank, "hs_code": blank}
            head = {"mode_of_transport": blank, "office_code": blank}
        r = post(client, headers, "declaration", minimal("declaration") | head | {"items": [item]})
        assert r.status_code == 200, r.text
        (a,) = r.json()["assessments"]
        answers.append((a["rule_ids"], a["reasons"][0], a["unknown_codes"], a["office_code"]))
    reason = "Item 1: Duty 9.0% under procedure unknown for HS unknown (rule T-BLANK v1, +30)"
    assert answers[0] == (["T-BLANK"], reason, [], None)
    assert answers == [answers[0]] * 4, answers


def test_a_required_field_sent_blank_is_missing(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    r = post(client, headers, "declaration", minimal("declaration") | {"declaration_id": " "})
    assert refused(r) == {"declaration_id": "missing"}


# -- text as ingest stores it, booleans as JSON's (decision 0096) ------------------------------------


def test_codes_are_read_as_ingest_stores_them(client, token_for, api_settings) -> None:
    """`" cn"`, `"8471.30"`, `"usd"` and `"csqu 305438-3"` are what ingest stores as `CN`, `847130`,
    `USD` and `CSQU3054383`: a rule on the stored spelling hits either way, and the answer is one."""
    with session_scope(api_settings.resolved_ops_db_url) as session:
        create_user(session, "alice", ["analyst"], service=True)
        create_user(session, "bob", ["supervisor"], service=True)
    rules.clear_cache()
    approve(
        api_settings,
        {"id": "T-SPELT", "title": "Computers from China in a known box", "kind": "declaration",
         "when": "country_of_origin = 'CN' and hs_code = '847130' and currency = 'USD'"
                 " and container_id = 'CSQU3054383' and invoice_currency = 'USD'",
         "weight": 30, "reason": "HS {hs_code} from {country_of_origin} in {container_id}"},
    )  # fmt: skip
    headers = bearer(token_for("clearance_system"))
    tidy = {"item_number": 1, "hs_code": "847130", "country_of_origin": "CN", "currency": "USD",
            "container_id": "CSQU3054383"}  # fmt: skip
    untidy = {"item_number": 1, "hs_code": "8471.30", "country_of_origin": " cn", "currency": "usd",
              "container_id": "csqu 305438-3"}  # fmt: skip
    answers = []
    for head, item in (({"invoice_currency": "USD"}, tidy), ({"invoice_currency": "Usd\u3000"}, untidy)):
        record = minimal("declaration") | head | {"items": [item]}
        if item is untidy:
            record["declaration_id"] = f" {record['declaration_id']} "  # the key: the same record id
        r = post(client, headers, "declaration", record)
        assert r.status_code == 200, r.text
        (a,) = r.json()["assessments"]
        answers.append({k: a[k] for k in ("record_id", "score", "risk_lane", "reasons", "rule_ids",
                                           "unknown_codes", "items")})  # fmt: skip
    assert answers[0]["rule_ids"] == ["T-SPELT"], answers[0]
    assert answers[0]["reasons"][0].startswith("Item 1: HS 847130 from CN in CSQU3054383")
    assert answers[1] == answers[0]


def test_enumerated_values_are_taken_in_any_case_and_refused_outside_their_list(client, token_for) -> None:
    """Ingest stores `pnr` as `PNR` and quarantines a value outside the list; real time answers 422
    naming the field and the values it takes (and not the value sent: the API echoes no input)."""
    headers = bearer(token_for("clearance_system"))
    checked = 0
    for kind in SUBJECTS:
        listed = [f for f in fields(kind) if f.values]
        if not listed:
            continue
        other_case = {f.name: f" {f.values[-1].swapcase()}" for f in listed}
        assert post(client, headers, kind, minimal(kind) | other_case).status_code == 200, kind
        r = post(client, headers, kind, minimal(kind) | dict.fromkeys(other_case, "nothing listed"))
        assert refused(r) == dict.fromkeys(other_case, "enum"), (kind, r.text)
        for f in listed:
            assert f"Input should be one of: {', '.join(f.values)} (in any case)" in r.text
        assert "nothing listed" not in r.text
        checked += len(listed)
    assert checked >= 7  # consignment, passenger and currency declaration have enumerated fields


def test_yes_no_fields_take_json_booleans_only(client, token_for) -> None:
    """As numbers are JSON numbers: `"yes"`, `1` or `"on"` is a guess at a boolean (pydantic's lax
    mode would take it), not `true`."""
    headers = bearer(token_for("clearance_system"))
    checked = 0
    for kind in SUBJECTS:
        flags = [f.name for f in fields(kind) if f.type == "bool"]
        if not flags:
            continue
        for value, what in (
            ("yes", "text"),
            ("on", "text"),
            ("true", "text"),
            (1, "a number"),
            (0, "a number"),
        ):
            r = post(client, headers, kind, minimal(kind) | dict.fromkeys(flags, value))
            assert refused(r) == dict.fromkeys(flags, "bool_type"), (kind, value, r.text)
            assert f"Input should be a JSON boolean (true or false), not {what}" in r.text
        for value in (True, False, None):
            r = post(client, headers, kind, minimal(kind) | dict.fromkeys(flags, value))
            assert r.status_code == 200, (kind, value, r.text)
        checked += len(flags)
    assert checked >= 2  # the passenger's is_crew and in_transit
