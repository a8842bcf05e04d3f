"""Risk rules over HTTP: draft, 422 with positions, submit, four-eyes approval, diff, history, dry-run."""

from __future__ import annotations

from tests.api.conftest import assert_envelope, bearer

RULE = """\
id: API-UNDER-01
title: Undervalued goods
kind: declaration
when: unit_value_ratio < 30% and not aeo
weight: 40
reason: "Unit value {unit_value_ratio:.0%} of reference"
"""


def test_the_four_eyes_flow_over_http(client, token_for) -> None:
    analyst, officer, supervisor = (
        bearer(token_for(r)) for r in ("analyst", "targeting_officer", "supervisor")
    )
    created = client.post("/api/v1/rules", json={"text": RULE, "comment": "first"}, headers=analyst)
    assert created.status_code == 201, created.text
    assert (created.json()["version"], created.json()["status"], created.json()["author"]) == (
        1,
        "draft",
        "u-analyst",
    )

    base = "/api/v1/rules/API-UNDER-01"
    assert client.post(f"{base}/versions/1/submit", json={}, headers=analyst).json()["status"] == "submitted"
    # The supervisor approves; a second analyst-like role could not (no rules.approve): 403 from the guard.
    assert client.post(f"{base}/versions/1/approve", json={}, headers=officer).status_code == 403
    approved = client.post(f"{base}/versions/1/approve", json={"comment": "ok"}, headers=supervisor)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "u-supervisor")

    changed = RULE.replace("30%", "25%")
    v2 = client.post(f"{base}/versions", json={"text": changed}, headers=officer)
    assert v2.status_code == 201 and v2.json()["version"] == 2
    diff = client.get(f"{base}/diff", params={"from": 1, "to": 2}, headers=analyst).json()["diff"]
    assert "-when: unit_value_ratio < 30% and not aeo" in diff and "+when: unit_value_ratio < 25%" in diff

    detail = client.get(base, headers=analyst).json()
    assert (detail["latest_version"], detail["effective_version"], detail["in_effect"]) == (2, 1, True)
    assert detail["effective"]["definition"]["when"] == "unit_value_ratio < 30% and not aeo"
    version = client.get(f"{base}/versions/2", headers=analyst).json()
    assert version["sql"].startswith("COALESCE(") and '"unit_value_ratio"' in version["sql"]

    history = client.get(f"{base}/history", headers=analyst).json()
    assert [(d["version"], d["decision"]) for d in history["decisions"]] == [
        (1, "create"),
        (1, "submit"),
        (1, "approve"),
        (2, "create"),
    ]
    listed = client.get("/api/v1/rules", params={"kind": "declaration"}, headers=supervisor).json()
    assert [r["id"] for r in listed] == ["API-UNDER-01"]


def test_an_author_holding_both_roles_cannot_approve_their_own_version(client, token_for) -> None:
    both = bearer(token_for("analyst", "supervisor"))
    other = bearer(token_for("supervisor"))
    client.post("/api/v1/rules", json={"text": RULE}, headers=both)
    client.post("/api/v1/rules/API-UNDER-01/versions/1/submit", json={}, headers=both)
    refused = client.post("/api/v1/rules/API-UNDER-01/versions/1/approve", json={}, headers=both)
    err = assert_envelope(refused, 403, "four_eyes")
    assert "cannot approve" in err["message"] and err["remedy"]
    assert (
        client.post("/api/v1/rules/API-UNDER-01/versions/1/approve", json={}, headers=other).status_code
        == 200
    )


def test_bad_rule_text_is_422_with_field_line_and_column(client, token_for) -> None:
    analyst = bearer(token_for("analyst"))
    bad = RULE.replace("unit_value_ratio < 30%", "unit_value_ratio < 30% and hs_chapter =")
    err = assert_envelope(
        client.post("/api/v1/rules", json={"text": bad}, headers=analyst), 422, "rule_invalid"
    )
    assert err["details"]["field"] == "when" and err["details"]["line"] == 1 and err["details"]["column"] > 30
    assert "expected" in err["remedy"]
    typo = RULE.replace("unit_value_ratio <", "unit_valu_ratio <")
    err = assert_envelope(
        client.post("/api/v1/rules", json={"text": typo}, headers=analyst), 422, "rule_invalid"
    )
    assert "unit_value_ratio" in err["remedy"]
    neither = {"id": "X", "title": "t", "kind": "declaration", "when": "aeo", "reason": "r"}
    err = assert_envelope(
        client.post("/api/v1/rules", json={"definition": neither}, headers=analyst), 422, "rule_invalid"
    )
    assert err["details"]["field"] == "weight"
    assert client.post("/api/v1/rules", json={}, headers=analyst).status_code == 422


def test_dry_run_endpoints_keep_their_figures(client, token_for) -> None:
    analyst, viewer = bearer(token_for("analyst")), bearer(token_for("viewer"))
    client.post("/api/v1/rules", json={"text": RULE}, headers=analyst)
    ran = client.post("/api/v1/rules/API-UNDER-01/versions/1/dry-run", json={"days": 7}, headers=analyst)
    assert ran.status_code == 200, ran.text
    assert (ran.json()["days"], ran.json()["hits"]) == (7, 0)  # an empty lake: nothing to hit
    kept = client.get("/api/v1/rules/API-UNDER-01/dry-runs", headers=analyst).json()
    assert [(k["version"], k["days"], k["actor"]) for k in kept] == [(1, 7, "u-analyst")]
    adhoc = client.post("/api/v1/rules/dry-run", json={"text": RULE, "days": 3}, headers=analyst)
    assert adhoc.status_code == 200 and adhoc.json()["version"] is None
    assert client.post("/api/v1/rules/dry-run", json={"text": RULE}, headers=viewer).status_code == 403
    cols = client.get("/api/v1/rule-columns/declaration", headers=analyst).json()
    assert {"unit_value_ratio", "hs_code", "aeo"} <= {c["name"] for c in cols}
