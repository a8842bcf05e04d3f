"""Requests too big to answer in real time are refused before they are parsed: a body over
16 MB (413), a declaration of more than 999 goods items, a batch of more than 10,000 (422)."""

from __future__ import annotations

import json

from sciti.api.errors import MAX_BODY_BYTES
from sciti.risk.engine.inputs import MAX_ITEMS, MAX_REQUEST_ITEMS
from tests.api.conftest import assert_envelope, bearer

ASSESS = "/api/v1/risk/assess"


def declaration(items: int, i: int = 0) -> dict:
    return {"declaration_id": f"D{i}", "version": 1, "items": [{"item_number": n + 1} for n in range(items)]}


def test_a_body_over_the_limit_is_refused_whole_or_chunked(client, token_for) -> None:
    headers = {**bearer(token_for("clearance_system")), "Content-Type": "application/json"}
    big = b'{"kind": "declaration", "record": {"declaration_id": "' + b"X" * MAX_BODY_BYTES + b'"}}'
    err = assert_envelope(client.post(ASSESS, content=big, headers=headers), 413, "payload_too_large")
    assert err["details"] == {"limit_bytes": MAX_BODY_BYTES} and "1,000" in err["remedy"]

    def chunks():  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 1 << 20):
            yield big[i : i + (1 << 20)]

    assert_envelope(client.post(ASSESS, content=chunks(), headers=headers), 413, "payload_too_large")
    # A body within the limit is parsed and judged on its fields, as before.
    fits = json.dumps({"kind": "declaration", "record": declaration(1) | {"office_code": "O" * 33}})
    assert_envelope(client.post(ASSESS, content=fits, headers=headers), 422, "validation_error")


def test_goods_items_are_bounded_per_declaration_and_per_request(client, token_for) -> None:
    headers = bearer(token_for("clearance_system"))
    one = {"kind": "declaration", "record": declaration(MAX_ITEMS + 1)}
    r = client.post(ASSESS, json=one, headers=headers)
    err = assert_envelope(r, 422, "validation_error")
    assert "items" in r.text and str(MAX_ITEMS) in r.text, err
    batch = [declaration(MAX_ITEMS, i) for i in range(MAX_REQUEST_ITEMS // MAX_ITEMS + 1)]
    r = client.post(ASSESS, json={"kind": "declaration", "records": batch}, headers=headers)
    err = assert_envelope(r, 422, "validation_error")
    assert "records" in r.text and "10,000" in r.text, err
