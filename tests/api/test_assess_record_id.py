"""A record sent for assessment cannot borrow another record's id: the id decides which stored
record, and which open queue item, the answer is about."""

from __future__ import annotations

from sciti.model import make_record_id
from tests.api.conftest import assert_envelope, bearer

ASSESS = "/api/v1/risk/assess"


def declaration(**extra) -> dict:
    return {"declaration_id": "D1", "version": 1, "items": [{"item_number": 1}], **extra}


def test_a_record_id_must_be_the_records_own(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    other = make_record_id("declaration", "kcs", "13157257", 1)  # a record on the officers' queue
    for record in (declaration(record_id=other), declaration(record_id=other, source="kcs")):
        r = client.post(ASSESS, json={"kind": "declaration", "record": record}, headers=headers)
        err = assert_envelope(r, 422, "validation_error")
        (field,) = err["details"]["fields"]
        assert field["field"].endswith("record_id") and field["type"] == "record_id_mismatch", err
        assert "declaration_id + version and the source" in field["problem"]
    item = declaration(items=[{"item_number": 1, "record_id": other}])
    r = client.post(ASSESS, json={"kind": "declaration", "record": item}, headers=headers)
    (field,) = assert_envelope(r, 422, "validation_error")["details"]["fields"]
    assert field["field"].endswith("items.0.record_id"), field
    assert "declaration_id + version + item_number" in field["problem"]
    # Its own id (as the source system's ingest gave it) is taken, as is no id at all.
    own = declaration(record_id=make_record_id("declaration", "kcs", "D1", 1), source="kcs")
    for record in (own, declaration()):
        r = client.post(ASSESS, json={"kind": "declaration", "record": record}, headers=headers)
        assert r.status_code == 200, r.text
        (answer,) = r.json()["assessments"]
        assert answer["record_id"] == make_record_id("declaration", record.get("source", "realtime"), "D1", 1)
