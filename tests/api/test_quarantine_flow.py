"""End to end through the API: push KCS rows, find the bad one in quarantine, correct, re-submit.

Reads the first rows of the real KCS declarations (../shared/data/kcs/train.csv).
"""

from __future__ import annotations

from tests.api.conftest import assert_envelope, bearer


def test_push_quarantine_correct_resubmit(client, token_for, shared_data):
    engineer = bearer(token_for("data_engineer"))
    header, good, other = (shared_data / "kcs" / "train.csv").read_text("utf-8").splitlines()[:3]
    hs = other.split(",")[12]
    bad = other.replace(f",{hs},", ",999999,")  # not an HS 2022 subheading
    pushed = client.post(
        "/api/v1/ingest/kcs",
        content=f"{header}\n{good}\n{bad}\n".encode(),
        headers={**engineer, "X-Filename": "part.csv", "Content-Type": "text/csv"},
    )
    assert pushed.status_code == 200, pushed.text
    batch = pushed.json()
    assert (batch["received"], batch["stored"], batch["quarantined"]) == (2, 1, 1)
    detail = client.get(f"/api/v1/batches/{batch['batch_id']}", headers=engineer).json()
    assert detail["reconciled"] and detail["quarantine_open"] == 1

    [entry] = client.get(f"/api/v1/quarantine?batch_id={batch['batch_id']}", headers=engineer).json()["items"]
    assert entry["field"] == "hs_code" and "999999" in entry["reason"] and entry["locator"].endswith("line 3")
    raw = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()["raw"]

    fixed = client.post(
        f"/api/v1/quarantine/{entry['id']}/resubmit",
        json={"corrected": raw.replace("999999", hs)},
        headers=engineer,
    )
    assert fixed.status_code == 200, fixed.text
    result = fixed.json()["result"]
    assert (result["status"], result["stored"], result["quarantined"]) == ("committed", 1, 0)
    after = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()
    assert after["status"] == "resubmitted" and after["resubmit_batch_id"] == result["batch_id"]
    resubmitted = client.get(f"/api/v1/batches/{result['batch_id']}", headers=engineer).json()
    assert resubmitted["resubmission_of"] == entry["id"]

    again = client.post(
        f"/api/v1/quarantine/{entry['id']}/resubmit", json={"corrected": raw}, headers=engineer
    )
    err = assert_envelope(again, 409, "conflict")  # the entry is closed: a conflict, not bad input
    assert (
        err["message"]
        == f"quarantine entry {entry['id']} is already resubmitted; only open entries can be re-submitted"
    )
    assert err["details"] == {"quarantine_id": entry["id"], "status": "resubmitted"}


def _quarantined_line(client, engineer, shared_data):
    """Push two real KCS rows, the second with an HS code that is no subheading: one entry."""
    header, good, other, fourth = (shared_data / "kcs" / "train.csv").read_text("utf-8").splitlines()[:4]
    hs = other.split(",")[12]
    pushed = client.post(
        "/api/v1/ingest/kcs",
        content=f"{header}\n{good}\n{other.replace(f',{hs},', ',999999,')}\n".encode(),
        headers={**engineer, "X-Filename": "valid.csv", "Content-Type": "text/csv"},
    )
    assert pushed.status_code == 200, pushed.text
    [entry] = client.get("/api/v1/quarantine?status=open", headers=engineer).json()["items"]
    return entry, header, good, other, fourth


def _audit(api_settings, action):
    from sciti.access import list_entries
    from sciti.ops import session_scope

    with session_scope(api_settings.resolved_ops_db_url) as s:
        return list_entries(s, action=action)


def test_a_correction_of_one_row_holding_three_is_refused_and_every_step_audited(
    client, token_for, shared_data, api_settings
):
    """The review: entry 1941 (one line) re-submitted with a header and 3 rows answered `received 3,
    stored 3` (the corrected line, a made-up declaration, a copy of a stored one), unaudited."""
    engineer = bearer(token_for("data_engineer"))
    entry, header, good, other, fourth = _quarantined_line(client, engineer, shared_data)
    assert "raw" not in entry  # the list gives where and why, never the content
    assert _audit(api_settings, "quarantine.read") == []

    shown = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer)
    assert shown.status_code == 200 and "999999" in shown.json()["raw"]
    [read] = _audit(api_settings, "quarantine.read")
    assert (read.actor, read.target) == ("u-data_engineer", f"quarantine:{entry['id']}")
    assert read.source and read.source != "cli" and read.details["data_source"] == "kcs"
    assert "999999" not in str(read.details)

    copy = good.replace(good.split(",")[1], "1", 1)  # a stored declaration with another value
    three = f"{header}\n{other}\n{fourth}\n{copy}\n"
    refused = client.post(
        f"/api/v1/quarantine/{entry['id']}/resubmit", json={"corrected": three}, headers=engineer
    )
    err = assert_envelope(refused, 422, "correction_mismatch")
    where = entry["locator"].replace(":line ", " line ")  # push names the unit: http:push-…/valid.csv
    assert where.endswith("/valid.csv line 3")
    assert err["message"].startswith(
        f"quarantine entry {entry['id']} is one quarantined row ({where}); the correction holds 3 records"
    )
    assert "through the connector" in err["remedy"]
    after = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()
    assert after["status"] == "open"
    batches = client.get("/api/v1/batches", headers=engineer).json()["items"]
    assert len(batches) == 1  # no batch for the refused correction
    [no] = _audit(api_settings, "quarantine.resubmit")
    assert (no.actor, no.outcome, no.details["records"]) == ("u-data_engineer", "refused", 3)

    fixed = client.post(
        f"/api/v1/quarantine/{entry['id']}/resubmit",
        json={"corrected": f"{header}\n{other}\n"},
        headers=engineer,
    )
    assert fixed.status_code == 200, fixed.text
    result = fixed.json()["result"]
    assert (result["received"], result["stored"]) == (1, 1)
    ok = _audit(api_settings, "quarantine.resubmit")[0]
    assert (ok.actor, ok.outcome, ok.details["stored"]) == ("u-data_engineer", "ok", 1)
    assert ok.details["resubmit_batch_id"] == result["batch_id"] and ok.source == read.source
    assert other.split(",")[0] not in str(ok.details)  # counts, never the content
    closed = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()
    assert closed["resolved_by"] == "u-data_engineer"


def test_discard_closes_an_entry_with_its_reason_and_audits_it_without_the_text(
    client, token_for, shared_data, api_settings
):
    """As `sciti quarantine discard`: a required reason, `quarantine.resubmit`, audited (decision 0109)."""
    engineer = bearer(token_for("data_engineer"))
    entry, *_ = _quarantined_line(client, engineer, shared_data)
    url = f"/api/v1/quarantine/{entry['id']}/discard"
    refusals = [  # body, account, status, code: refused before anything changes
        ({}, engineer, 422, "validation_error"),
        ({"reason": "   "}, engineer, 422, "validation_error"),
        ({"reason": "x" * 2001}, engineer, 422, "validation_error"),
        ({"reason": "resent"}, bearer(token_for("analyst")), 403, "forbidden"),
        ({"reason": "resent"}, bearer(token_for("viewer")), 403, "forbidden"),
    ]
    for body, who, status, code in refusals:
        assert_envelope(client.post(url, json=body, headers=who), status, code)
    blank = client.post(url, json={"reason": " "}, headers=engineer).json()["error"]
    assert "a reason is required" in blank["details"]["fields"][0]["problem"]
    unknown = assert_envelope(
        client.post("/api/v1/quarantine/987654/discard", json={"reason": "resent"}, headers=engineer),
        404,
        "not_found",
    )
    assert (
        unknown["message"] == "no quarantined record 987654" and "GET /api/v1/quarantine" in unknown["remedy"]
    )
    assert client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()["status"] == "open"
    assert _audit(api_settings, "quarantine.discard") == []

    reason = "HS 2017 code 999999; the broker resent the declaration as version 2"
    done = client.post(url, json={"reason": reason}, headers=engineer)
    assert done.status_code == 200, done.text
    closed = done.json()
    assert (closed["id"], closed["status"], closed["resolved_by"]) == (
        entry["id"],
        "discarded",
        "u-data_engineer",
    )
    assert closed["resolved_at"] and "raw" not in closed
    shown = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()
    assert shown["details"]["discard_reason"] == reason
    [ok] = _audit(api_settings, "quarantine.discard")
    assert (ok.actor, ok.outcome, ok.target) == ("u-data_engineer", "ok", f"quarantine:{entry['id']}")
    assert ok.source and ok.source != "cli" and ok.details["data_source"] == "kcs"
    assert "999999" not in str(ok.details) and "broker" not in str(ok.details)  # neither text nor reason

    for action, body in (("discard", {"reason": "again"}), ("resubmit", {"corrected": shown["raw"]})):
        again = client.post(f"/api/v1/quarantine/{entry['id']}/{action}", json=body, headers=engineer)
        err = assert_envelope(again, 409, "conflict")
        assert f"quarantine entry {entry['id']} is already discarded" in err["message"]
        assert err["details"]["status"] == "discarded" and err["remedy"]
    refused = _audit(api_settings, "quarantine.discard")[0]  # newest first
    assert (refused.outcome, refused.details["status"]) == ("refused", "discarded")
    assert [e.outcome for e in _audit(api_settings, "quarantine.resubmit")] == ["refused"]
    after = client.get(f"/api/v1/quarantine/{entry['id']}", headers=engineer).json()
    assert after["details"]["discard_reason"] == reason  # the first decision stands
