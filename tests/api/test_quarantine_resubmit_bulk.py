"""POST /api/v1/quarantine/resubmit: a selection re-submitted as quarantined, a part per call, over
real KCS rows (decision 0117).

The real case: real declarations (../shared/data/kcs/train.csv) are pushed while the instance's HS
code list lacks a subheading they use (a code list not yet updated: ``392690`` missing), so those
rows land in quarantine. The code list is then corrected and the service restarted (code lists are
read once per process), and the client re-submits the entries, calling again while some remain.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from sciti.acquire.validation import codelists
from sciti.model.codelists import _load
from sciti.ops import migrate
from sciti.settings import Settings
from tests.acquire.conftest import rows
from tests.api.conftest import assert_envelope, bearer
from tests.conftest import make_settings

URL = "/api/v1/quarantine/resubmit"
MISSING = "392690"  # Plastics; other articles n.e.c. in chapter 39: the most frequent KCS code


def hs_file(settings: Settings) -> Path:
    return Path(settings.codelists_dir) / "hs" / "harmonized-system.csv"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_settings(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path) -> Settings:
    """An instance (on each backend) whose HS code list lacks one subheading."""
    lists = tmp_path / "codelists"
    shutil.copytree(shared_data / "codelists", lists)
    home = tmp_path / "instance"
    home.mkdir()
    if request.param == "sqlite":
        s = make_settings(home, codelists_dir=lists)
    else:
        url = request.getfixturevalue("pg_database")
        s = make_settings(home, codelists_dir=lists, catalog_uri=url, ops_db_url=url)
    path = hs_file(s)
    with path.open(encoding="utf-8", newline="") as fh:
        kept = [r for r in csv.reader(fh) if r[1] != MISSING]
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(kept)
    migrate(s.resolved_ops_db_url)
    return s


def fix_code_list(settings: Settings, shared_data: Path) -> None:
    """The corrected list put in place, and read afresh as a restarted service reads it."""
    shutil.copyfile(shared_data / "codelists" / "hs" / "harmonized-system.csv", hs_file(settings))
    codelists.cache_clear()
    _load.cache_clear()


def push(client, engineer, shared_data: Path, n_missing: int, n_other: int, name: str) -> str:
    """Real KCS rows: ``n_missing`` with the missing code (quarantined), ``n_other`` stored."""
    lines = (shared_data / "kcs" / "train.csv").read_text("utf-8").splitlines()
    missing = [r for r in lines[1:] if r.split(",")[12] == MISSING][:n_missing]
    other = [r for r in lines[1:] if r.split(",")[12] != MISSING][:n_other]
    pushed = client.post(
        "/api/v1/ingest/kcs",
        content=("\n".join([lines[0], *other, *missing]) + "\n").encode(),
        headers={**engineer, "X-Filename": name, "Content-Type": "text/csv"},
    )
    assert pushed.status_code == 200, pushed.text
    assert (pushed.json()["stored"], pushed.json()["quarantined"]) == (n_other, n_missing)
    return pushed.json()["batch_id"]


def open_in(client, engineer, batch: str) -> int:
    return client.get(f"/api/v1/batches/{batch}", headers=engineer).json()["quarantine_open"]


def bulk_audits(api_settings) -> list:
    from sciti.access import list_entries
    from sciti.ops import session_scope

    with session_scope(api_settings.resolved_ops_db_url) as s:
        return [e for e in list_entries(s, action="quarantine.resubmit") if e.details.get("bulk")]


def test_a_fixed_code_list_and_a_looping_client_store_every_quarantined_row(
    client, token_for, shared_data, api_settings
):
    engineer = bearer(token_for("data_engineer"))
    batch = push(client, engineer, shared_data, 12, 5, "kcs-2026-03.csv")
    listed = client.get(f"/api/v1/quarantine?batch_id={batch}", headers=engineer).json()["items"]
    assert {e["reason"].split(" is not")[0] for e in listed} == {f"hs_code: HS code '{MISSING}'"}

    body = {"batch_id": batch, "reason_contains": f"'{MISSING}' is not in the HS 2022 nomenclature"}
    preview = client.post(URL, json={**body, "dry_run": True}, headers=engineer)
    assert preview.status_code == 200, preview.text
    assert {k: preview.json()[k] for k in ("selected", "taken", "remaining", "resubmitted")} == {
        "selected": 12,
        "taken": 12,
        "remaining": 0,
        "resubmitted": 0,
    }
    assert open_in(client, engineer, batch) == 12 and bulk_audits(api_settings) == []

    fix_code_list(api_settings, shared_data)
    calls, cursor = [], {}
    while not calls or calls[-1]["remaining"]:  # the client's loop: a part per call
        answer = client.post(URL, json={**body, **cursor, "limit": 5}, headers=engineer)
        assert answer.status_code == 200, answer.text
        calls.append(answer.json())
        cursor = {"after_id": calls[-1]["after_id"], "up_to_id": calls[-1]["up_to_id"]}
        assert len(calls) <= 3
    assert [(c["selected"], c["resubmitted"], c["remaining"]) for c in calls] == [
        (12, 5, 7),
        (7, 5, 2),
        (2, 2, 0),
    ]
    assert sum(c["stored"] for c in calls) == 12 and all(c["still_open"] == 0 for c in calls)
    assert all(c["seconds"] < 20 for c in calls)

    # the counts agree: the batch has nothing open, every row is stored once, each call's entries
    # (one original file) went as one batch whose counts reconcile (decision 0120), and the batch
    # list sums to what the lake holds
    assert open_in(client, engineer, batch) == 0
    assert len(rows(api_settings, "std.declarations")) == 17
    batches = client.get("/api/v1/batches?limit=100", headers=engineer).json()["items"]
    again = sorted((b for b in batches if b["id"] != batch), key=lambda b: int(b["unit"].split("-")[1]))
    counted = [(b["received"], b["stored"], b["quarantined"]) for b in again]
    assert counted == [(5, 5, 0), (5, 5, 0), (2, 2, 0)]
    assert {b["transport"] for b in again} == {"resubmit-bundle"}
    assert sum(b["stored"] for b in batches) == 17
    closed = client.get(f"/api/v1/quarantine?batch_id={batch}", headers=engineer).json()["items"]
    assert {(e["status"], e["resolved_by"]) for e in closed} == {("resubmitted", "u-data_engineer")}
    assert {e["resubmit_batch_id"] for e in closed} == {b["id"] for b in again}
    ids = sorted(e["id"] for e in closed)
    assert [b["unit"] for b in again] == [
        f"resubmit-{ids[0]}-{ids[4]}.zip",
        f"resubmit-{ids[5]}-{ids[9]}.zip",
        f"resubmit-{ids[10]}-{ids[11]}.zip",
    ]
    # each stored row says which entry it came back from
    locators = {r["locator"] for r in rows(api_settings, "std.declarations")}
    pushed = next(e["locator"] for e in closed if e["id"] == ids[2]).split(":line ")[0]  # http:push-…
    assert f"resubmit-{ids[0]}-{ids[4]}.zip!{pushed}#resubmit-{ids[2]}:line 2" in locators

    audits = bulk_audits(api_settings)
    assert [a.details["resubmitted"] for a in audits] == [2, 5, 5]  # newest first: one per call
    assert {a.details["up_to_id"] for a in audits} == {calls[0]["up_to_id"]}
    assert all(a.actor == "u-data_engineer" and a.source != "cli" for a in audits)


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_the_permission_is_quarantine_resubmit(client, token_for, shared_data, api_settings, role):
    engineer = bearer(token_for("data_engineer"))
    batch = push(client, engineer, shared_data, 2, 0, "p.csv")
    body = {"batch_id": batch}
    assert_envelope(client.post(URL, json=body, headers=bearer(token_for(role))), 403, "forbidden")
    assert_envelope(
        client.post(URL, json={**body, "dry_run": True}, headers=bearer(token_for(role))), 403, "forbidden"
    )
    assert_envelope(client.post(URL, json=body), 401, "authentication_required")
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["all"]),  # an empty selection: everything, by accident
        ({"all": False}, ["all"]),
        ({"connector": ""}, ["connector", "all"]),
        ({"connector": "k" * 101}, ["connector"]),
        ({"batch_id": "b" * 41}, ["batch_id"]),
        ({"reason_contains": "%" * 201}, ["reason_contains"]),
        ({"batch_id": ["b"]}, ["batch_id"]),
        ({"ids": ["1; DROP TABLE quarantine"]}, ["ids.0"]),
        ({"ids": [0]}, ["ids.0"]),
        ({"ids": [2**31]}, ["ids.0"]),
        ({"ids": list(range(1, 50_002))}, ["ids"]),
        ({"received_after": "yesterday"}, ["received_after"]),
        ({"received_after": "2026-03-02", "received_before": "2026-03-01T23:00:00Z"}, ["received_before"]),
        ({"batch_id": "b", "reason": "resent"}, ["reason"]),  # no silent extras: this is not a discard
        ({"batch_id": "b", "corrected": "x"}, ["corrected"]),  # nor a correction
        ({"batch_id": "b", "limit": 0}, ["limit"]),
        ({"batch_id": "b", "limit": 101}, ["limit"]),  # a call must end well within a minute
        ({"batch_id": "b", "after_id": -1}, ["after_id"]),
        ({"batch_id": "b", "up_to_id": 0}, ["up_to_id"]),
        ({"batch_id": "b", "after_id": 5}, ["up_to_id"]),  # continuing needs the first call's top
        ({"batch_id": "b", "up_to_id": "max"}, ["up_to_id"]),
        ({"batch_id": "b", "dry_run": "maybe"}, ["dry_run"]),
    ],
    ids=lambda v: None,
)
def test_bad_input_is_refused_field_by_field_and_nothing_changes(
    client, token_for, shared_data, api_settings, body, fields
):
    engineer = bearer(token_for("data_engineer"))
    batch = push(client, engineer, shared_data, 2, 0, "h.csv")
    err = assert_envelope(client.post(URL, json=body, headers=engineer), 422, "validation_error")
    assert [f["field"] for f in err["details"]["fields"]] == fields, err
    assert all(f["problem"] for f in err["details"]["fields"])
    assert "DROP" not in str(err) and "k" * 101 not in str(err)  # the value is never echoed
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []


def test_unknown_ids_and_broken_json_are_refused(client, token_for, shared_data, api_settings):
    engineer = bearer(token_for("data_engineer"))
    batch = push(client, engineer, shared_data, 2, 0, "u.csv")
    [known, *_] = client.get(f"/api/v1/quarantine?batch_id={batch}", headers=engineer).json()["items"]
    unknown = assert_envelope(
        client.post(URL, json={"ids": [known["id"], 987654]}, headers=engineer), 404, "not_found"
    )
    assert "no quarantine entry 987654" in unknown["message"]
    assert "nothing was re-submitted" in unknown["remedy"]
    broken = client.post(
        URL, content=b'{"ids": [1,', headers={**engineer, "Content-Type": "application/json"}
    )
    assert_envelope(broken, 422, "validation_error")
    assert open_in(client, engineer, batch) == 2 and bulk_audits(api_settings) == []


def test_an_unfixed_cause_is_quarantined_again_and_the_answer_says_so(
    client, token_for, shared_data, api_settings
):
    """Re-submitted before the code list is fixed: each entry is quarantined again (closed, a new
    open entry the call does not take), and the answer says so in its counts."""
    engineer = bearer(token_for("data_engineer"))
    batch = push(client, engineer, shared_data, 3, 0, "early.csv")
    done = client.post(URL, json={"batch_id": batch}, headers=engineer).json()
    assert (done["resubmitted"], done["quarantined"], done["stored"], done["remaining"]) == (3, 3, 0, 0)
    assert open_in(client, engineer, batch) == 0
    reopened = client.get("/api/v1/quarantine?status=open", headers=engineer).json()["items"]
    assert len(reopened) == 3 and all(e["id"] > done["up_to_id"] for e in reopened)
