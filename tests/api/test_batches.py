"""Batches and quarantine from the operational registry, with filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sciti.ops import Batch, QuarantineRecord, session_scope
from tests.api.conftest import assert_envelope, bearer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCHES = [
    # id, connector, status, received, stored, quarantined
    ("b1", "kcs", "committed", 100, 98, 2),
    ("b2", "kcs", "committed", 50, 50, 0),
    ("b3", "wco-dec", "failed", 10, 0, 0),
    ("b4", "wco-dec", "committed", 5, 3, 2),
    ("b5", "kcs", "running", 0, 0, 0),
]


@pytest.fixture
def registry(api_settings):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        for i, (bid, conn, status, rec, sto, qua) in enumerate(BATCHES):
            s.add(
                Batch(
                    id=bid,
                    connector=conn,
                    source=conn,
                    unit=f"file-{bid}.csv",
                    fingerprint=bid * 8,
                    status=status,
                    received=rec,
                    stored=sto,
                    quarantined=qua,
                    tables={"std.declarations": sto},
                    started_at=T0 + timedelta(minutes=i),
                )
            )
        s.flush()
        for n, (bid, line, status) in enumerate(
            [("b1", 7, "open"), ("b1", 9, "resubmitted"), ("b4", 2, "open"), ("b4", 3, "open")]
        ):
            s.add(
                QuarantineRecord(
                    batch_id=bid,
                    connector="kcs" if bid == "b1" else "wco-dec",
                    source="x",
                    locator=f"file-{bid}.csv:{line}",
                    field="hs_code",
                    reason=f"HS code 9999{n} is not in HS 2022",
                    raw=f"row {line} raw text",
                    status=status,
                    details={"value": f"9999{n}"},
                )
            )
    return api_settings


@pytest.fixture
def engineer(token_for):
    return bearer(token_for("data_engineer"))


LIST_CASES = [
    ("", ["b5", "b4", "b3", "b2", "b1"], 5),
    ("?connector=kcs", ["b5", "b2", "b1"], 3),
    ("?status=committed", ["b4", "b2", "b1"], 3),
    ("?connector=wco-dec&status=failed", ["b3"], 1),
    ("?limit=2", ["b5", "b4"], 5),
    ("?limit=2&offset=4", ["b1"], 5),
    ("?connector=nothing", [], 0),
]


def test_batch_list_filters_and_pages(client, registry, engineer):
    # One instance serves the whole table: a PostgreSQL database per case would cost seconds each.
    for query, ids, total in LIST_CASES:
        body = client.get(f"/api/v1/batches{query}", headers=engineer).json()
        assert ([b["id"] for b in body["items"]], body["total"]) == (ids, total), query


def test_batch_detail_shows_counts_and_open_quarantine(client, registry, engineer):
    body = client.get("/api/v1/batches/b1", headers=engineer).json()
    assert (body["received"], body["stored"], body["quarantined"]) == (100, 98, 2)
    assert body["reconciled"] is True and body["quarantine_open"] == 1
    assert body["tables"] == {"std.declarations": 98}
    assert client.get("/api/v1/batches/b3", headers=engineer).json()["reconciled"] is False
    assert_envelope(client.get("/api/v1/batches/nope", headers=engineer), 404, "not_found")


def test_a_batch_counts_rows_already_stored_in_its_reconciliation(client, registry, engineer):
    """Rows sent before with the same values are counted apart (decision 0105): 10 received =
    4 stored + 1 quarantined + 5 already stored reconciles; without that count it would not."""
    with session_scope(registry.resolved_ops_db_url) as s:
        for bid, already in (("again", 5), ("short", 0)):
            s.add(
                Batch(
                    id=bid, connector="kcs", source="kcs", unit=f"{bid}.csv", fingerprint=bid,
                    status="committed", received=10, stored=4, quarantined=1, already_stored=already,
                    tables={}, started_at=T0,
                )
            )  # fmt: skip
    again = client.get("/api/v1/batches/again", headers=engineer).json()
    assert (again["already_stored"], again["reconciled"]) == (5, True)
    short = client.get("/api/v1/batches/short", headers=engineer).json()
    assert (short["already_stored"], short["reconciled"]) == (0, False)
    listed = client.get("/api/v1/batches?connector=kcs", headers=engineer).json()["items"]
    assert {b["id"]: b["already_stored"] for b in listed}["again"] == 5


QUARANTINE_CASES = [
    ("", 4),
    ("?status=open", 3),
    ("?batch_id=b4", 2),
    ("?connector=kcs&status=resubmitted", 1),
    ("?limit=1", 1),
]


def test_quarantine_list_filters(client, registry, engineer):
    for query, count in QUARANTINE_CASES:
        body = client.get(f"/api/v1/quarantine{query}", headers=engineer).json()
        assert len(body["items"]) == count, query
        assert all("raw" not in item for item in body["items"])  # raw content only on the detail view


def test_quarantine_detail_has_raw_and_reason(client, registry, engineer):
    first = client.get("/api/v1/quarantine?batch_id=b1&status=open", headers=engineer).json()["items"][0]
    detail = client.get(f"/api/v1/quarantine/{first['id']}", headers=engineer).json()
    assert detail["locator"] == "file-b1.csv:7" and detail["field"] == "hs_code"
    assert detail["raw"] == "row 7 raw text" and "HS 2022" in detail["reason"]
    assert_envelope(client.get("/api/v1/quarantine/999999", headers=engineer), 404, "not_found")


def test_resubmit_of_a_missing_record_is_404(client, registry, engineer):
    response = client.post("/api/v1/quarantine/999999/resubmit", json={"corrected": "x"}, headers=engineer)
    assert_envelope(response, 404, "not_found")
