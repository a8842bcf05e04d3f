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
    assert_envelope(again, 422, "acquire_error")
