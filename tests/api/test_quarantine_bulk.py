"""POST /api/v1/quarantine/discard: a selection discarded at once, over real KCS rows (decision 0110).

Real declarations (../shared/data/kcs/train.csv) pushed with an HS code that is no subheading land
in quarantine; the selection closes them with one audit entry, and the batch's open count drops by
exactly the number closed.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_envelope, bearer

URL = "/api/v1/quarantine/discard"


def push_bad(client, engineer, shared_data, first: int, n: int, name: str) -> tuple[str, list[str]]:
    """Push ``n`` real KCS rows whose HS code is 999999: one batch, ``n`` open entries."""
    lines = (shared_data / "kcs" / "train.csv").read_text("utf-8").splitlines()
    header, rows = lines[0], lines[1 + first : 1 + first + n]
    bad = [r.replace(f",{r.split(',')[12]},", ",999999,", 1) for r in rows]
    pushed = client.post(
        "/api/v1/ingest/kcs",
        content=("\n".join([header, *bad]) + "\n").encode(),
        headers={**engineer, "X-Filename": name, "Content-Type": "text/csv"},
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["quarantined"] == n
    return pushed.json()["batch_id"], [r.split(",")[0] for r in rows]


def open_in(client, engineer, batch: str) -> int:
    return client.get(f"/api/v1/batches/{batch}", headers=engineer).json()["quarantine_open"]


def bulk_audits(api_settings) -> list:
    from sciti.access import list_entries
    from sciti.ops import session_scope

    with session_scope(api_settings.resolved_ops_db_url) as s:
        return [e for e in list_entries(s, action="quarantine.discard") if e.details.get("bulk")]


def test_a_batch_discarded_at_once_drops_its_open_count_by_exactly_the_closed(
    client, token_for, shared_data, api_settings
):
    engineer = bearer(token_for("data_engineer"))
    batch, declaration_ids = push_bad(client, engineer, shared_data, 0, 6, "hs.csv")
    other, _ = push_bad(client, engineer, shared_data, 10, 2, "other.csv")
    assert (open_in(client, engineer, batch), open_in(client, engineer, other)) == (6, 2)

    body = {"batch_id": batch, "reason_contains": "999999", "reason": "HS 2017 codes; resent as v2"}
    preview = client.post(URL, json={**body, "dry_run": True}, headers=engineer)
    assert preview.status_code == 200, preview.text
    assert {k: preview.json()[k] for k in ("matched", "closed", "remaining", "dry_run")} == {
        "matched": 6,
        "closed": 6,
        "remaining": 0,
        "dry_run": True,
    }
    assert open_in(client, engineer, batch) == 6 and bulk_audits(api_settings) == []

    done = client.post(URL, json={**body, "limit": 4}, headers=engineer)
    assert done.status_code == 200, done.text
    first = done.json()
    assert (first["matched"], first["closed"], first["skipped"], first["remaining"]) == (6, 4, 0, 2)
    assert open_in(client, engineer, batch) == 2  # dropped by exactly the closed count
    rest = client.post(URL, json=body, headers=engineer).json()
    assert (rest["matched"], rest["closed"], rest["remaining"], rest["already_closed"]) == (2, 2, 0, 4)
    assert (open_in(client, engineer, batch), open_in(client, engineer, other)) == (0, 2)
    again = client.post(URL, json=body, headers=engineer).json()
    assert (again["matched"], again["closed"], again["already_closed"]) == (0, 0, 6)  # and says so

    closed = client.get(f"/api/v1/quarantine?batch_id={batch}", headers=engineer).json()["items"]
    assert {(e["status"], e["resolved_by"]) for e in closed} == {("discarded", "u-data_engineer")}
    one = client.get(f"/api/v1/quarantine/{closed[0]['id']}", headers=engineer).json()
    assert one["details"]["discard_reason"] == body["reason"]
    assert one["details"]["discarded_with"] in (first["audit_ref"], rest["audit_ref"])

    audits = bulk_audits(api_settings)
    assert [a.details["closed"] for a in audits] == [0, 2, 4]  # newest first: one per call
    newest = audits[-1]
    assert (newest.actor, newest.outcome) == ("u-data_engineer", "ok") and newest.source != "cli"
    assert newest.details["selection"] == {"batch_id": batch, "reason_contains": "999999"}
    assert newest.details["ref"] == first["audit_ref"]
    said = str([a.details for a in audits])
    assert not any(d in said for d in declaration_ids) and "resent" not in said  # no content, no reason


@pytest.mark.parametrize(
    ("role", "status", "code"), [("analyst", 403, "forbidden"), ("viewer", 403, "forbidden")]
)
def test_the_permission_is_quarantine_resubmit(
    client, token_for, shared_data, api_settings, role, status, code
):
    engineer = bearer(token_for("data_engineer"))
    batch, _ = push_bad(client, engineer, shared_data, 0, 2, "p.csv")
    body = {"batch_id": batch, "reason": "resent"}
    assert_envelope(client.post(URL, json=body, headers=bearer(token_for(role))), status, code)
    assert_envelope(
        client.post(URL, json={**body, "dry_run": True}, headers=bearer(token_for(role))), status, code
    )
    assert_envelope(client.post(URL, json=body), 401, "authentication_required")
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"batch_id": "b"}, ["reason"]),
        ({"batch_id": "b", "reason": "   "}, ["reason"]),
        ({"batch_id": "b", "reason": "x" * 2001}, ["reason"]),
        ({"reason": "resent"}, ["all"]),  # an empty selection: everything, by accident
        ({"reason": "resent", "all": False}, ["all"]),
        ({"reason": "resent", "connector": ""}, ["connector", "all"]),
        ({"reason": "resent", "connector": "k" * 101}, ["connector"]),
        ({"reason": "resent", "batch_id": "b" * 41}, ["batch_id"]),
        ({"reason": "resent", "reason_contains": "%" * 201}, ["reason_contains"]),
        ({"reason": "resent", "batch_id": ["b"]}, ["batch_id"]),
        ({"reason": "resent", "ids": ["1; DROP TABLE quarantine"]}, ["ids.0"]),
        ({"reason": "resent", "ids": [0]}, ["ids.0"]),
        ({"reason": "resent", "ids": [2**31]}, ["ids.0"]),
        ({"reason": "resent", "ids": list(range(1, 50_002))}, ["ids"]),
        ({"reason": "resent", "received_after": "yesterday"}, ["received_after"]),
        ({"reason": "resent", "received_before": "2026-02-30"}, ["received_before"]),
        (
            {"reason": "resent", "received_after": "2026-03-02", "received_before": "2026-03-01T23:00:00Z"},
            ["received_before"],
        ),
        ({"reason": "resent", "batch_id": "b", "status": "open"}, ["status"]),  # no silent extras
        ({"reason": "resent", "batch_id": "b", "limit": 0}, ["limit"]),
        ({"reason": "resent", "batch_id": "b", "limit": 50_001}, ["limit"]),
        ({"reason": "resent", "batch_id": "b", "dry_run": "maybe"}, ["dry_run"]),
    ],
    ids=lambda v: None,
)
def test_bad_input_is_refused_field_by_field_and_nothing_changes(
    client, token_for, shared_data, api_settings, body, fields
):
    engineer = bearer(token_for("data_engineer"))
    batch, _ = push_bad(client, engineer, shared_data, 0, 2, "h.csv")
    err = assert_envelope(client.post(URL, json=body, headers=engineer), 422, "validation_error")
    assert [f["field"] for f in err["details"]["fields"]] == fields, err
    assert all(f["problem"] for f in err["details"]["fields"])
    assert "DROP" not in str(err) and "k" * 101 not in str(err)  # the value is never echoed
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []


def test_an_empty_selection_says_how_to_mean_everything_and_all_takes_everything(
    client, token_for, shared_data, api_settings
):
    engineer = bearer(token_for("data_engineer"))
    batch, _ = push_bad(client, engineer, shared_data, 0, 3, "e.csv")
    err = assert_envelope(client.post(URL, json={"reason": "x"}, headers=engineer), 422, "validation_error")
    assert "the selection is empty" in err["details"]["fields"][0]["problem"]
    everything = client.post(URL, json={"reason": "test instance reset", "all": True}, headers=engineer)
    assert everything.status_code == 200, everything.text
    assert everything.json()["closed"] == 3 and everything.json()["selection"] == {"everything": True}
    assert open_in(client, engineer, batch) == 0


def test_unknown_ids_and_broken_json_are_refused(client, token_for, shared_data, api_settings):
    engineer = bearer(token_for("data_engineer"))
    batch, _ = push_bad(client, engineer, shared_data, 0, 2, "u.csv")
    [known, *_] = client.get(f"/api/v1/quarantine?batch_id={batch}", headers=engineer).json()["items"]
    unknown = assert_envelope(
        client.post(URL, json={"reason": "x", "ids": [known["id"], 987654]}, headers=engineer),
        404,
        "not_found",
    )
    assert "no quarantine entry 987654" in unknown["message"] and "nothing was discarded" in unknown["remedy"]
    broken = client.post(
        URL, content=b'{"reason": "x", "ids": [1,', headers={**engineer, "Content-Type": "application/json"}
    )
    assert_envelope(broken, 422, "validation_error")
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []
