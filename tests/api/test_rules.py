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
    submitted = client.post(f"{base}/versions/1/submit", json={}, headers=analyst).json()
    assert submitted["status"] == "submitted"
    # Every rule time answers in UTC with its zone, whether just written or read back.
    read = client.get(f"{base}/versions/1", headers=analyst).json()
    for when in (created.json()["created_at"], submitted["created_at"], read["created_at"]):
        assert when.endswith(("Z", "+00:00")), when
    assert client.get(base, headers=analyst).json()["created_at"].endswith(("Z", "+00:00"))
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


# -- dry-runs are reads on the caller's behalf (decision 0080) ------------------------------------

PASSPORT_RULE = """\
id: API-PAX-01
title: A known passport
kind: passenger
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def audit_of(client, token_for, action: str) -> list[dict]:
    security = bearer(token_for("security_officer"))
    page = client.get("/api/v1/audit", params={"action": action, "limit": 500}, headers=security)
    assert page.status_code == 200, page.text
    return page.json()["entries"]


def test_the_reported_oracle_is_closed_and_every_attempt_is_audited(client, token_for, api_settings) -> None:
    """The security review's attack, as the targeting officer made it, now learns nothing."""
    from tests.risk.rules.test_dryrun_access import write_passengers

    write_passengers(api_settings)
    officer = bearer(token_for("targeting_officer"))
    asked = {"text": PASSPORT_RULE, "days": 400}
    err = assert_envelope(
        client.post("/api/v1/rules/dry-run", json=asked, headers=officer), 403, "protected_fields"
    )
    assert err["details"]["fields"] == ["document_number"] and "document_number" in err["message"]
    assert '"unmask": true' in err["remedy"] and "purpose" in err["remedy"]
    for prefix in ("H", "HO"):  # a known record id, then the masked surname letter by letter
        text = PASSPORT_RULE.replace(
            "document_number = 'G352540(5)'", f"record_id = 'p0' and surname starts with '{prefix}'"
        )
        refused = client.post("/api/v1/rules/dry-run", json={"text": text, "days": 400}, headers=officer)
        assert assert_envelope(refused, 403, "protected_fields")["details"]["fields"] == ["surname"]
    no_purpose = client.post("/api/v1/rules/dry-run", json={**asked, "unmask": True}, headers=officer)
    assert_envelope(no_purpose, 403, "access_error")

    stated = {**asked, "unmask": True, "purpose": "case 2026-114: the courier's trips"}
    ran = client.post("/api/v1/rules/dry-run", json=stated, headers=officer)
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert (body["hits"], sorted(body["sample_ids"]), body["unmasked"]) == (
        3,
        ["p0", "p1", "p2"],
        ["document_number"],
    )

    entries = audit_of(client, token_for, "rule.dry_run")
    assert [(e["actor"], e["outcome"]) for e in entries] == [("u-targeting_officer", "ok")] + [
        ("u-targeting_officer", "denied")
    ] * 4
    assert entries[0]["purpose"] == "case 2026-114: the courier's trips"
    assert entries[0]["details"]["hits"] == 3 and entries[0]["details"]["personal_unmasked"] == [
        "document_number"
    ]
    assert all(e["target"] == "rule:API-PAX-01" and e["source"] for e in entries)
    assert "G352540" not in str(entries)  # the literal looked for is never copied into the trail


def test_a_stored_rule_on_personal_fields_dry_runs_with_a_purpose_and_its_figures_stay_in_scope(
    client, token_for, api_settings
) -> None:
    from sciti.access import create_user, issue_token
    from sciti.ops import session_scope
    from tests.risk.rules.test_dryrun_access import write_passengers

    write_passengers(api_settings)
    officer, supervisor = bearer(token_for("targeting_officer")), bearer(token_for("supervisor"))
    created = client.post("/api/v1/rules", json={"text": PASSPORT_RULE}, headers=officer)
    assert created.status_code == 201, created.text
    (entry,) = audit_of(client, token_for, "rule.create")
    assert entry["details"]["protected_fields"] == {"personal": ["document_number"]}

    base = "/api/v1/rules/API-PAX-01/versions/1/dry-run"
    assert_envelope(client.post(base, json={"days": 400}, headers=officer), 403, "protected_fields")
    stated = {"days": 400, "unmask": True, "purpose": "case 2026-114"}
    ran = client.post(base, json=stated, headers=officer)
    assert ran.status_code == 200 and ran.json()["hits"] == 3, ran.text
    assert [e["outcome"] for e in audit_of(client, token_for, "rule.dry_run")] == ["ok", "denied"]

    with session_scope(api_settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, "kim", ["supervisor"], office_code="KR01", service=True)
        kim = bearer(issue_token(session, user, 60).token)
    kept = client.get("/api/v1/rules/API-PAX-01/dry-runs", headers=supervisor).json()
    assert kept[0]["withheld"] is None and kept[0]["result"]["hits"] == 3
    # Made over every office's records: not for an account bound to one office.
    kept = client.get("/api/v1/rules/API-PAX-01/dry-runs", headers=kim).json()
    assert kept[0]["result"] == {} and "every office" in kept[0]["withheld"]


def test_an_office_bound_officer_dry_runs_over_their_offices_records_only(
    client, token_for, api_settings
) -> None:
    from sciti.access import create_user, issue_token
    from sciti.ops import session_scope
    from tests.risk.rules.test_dryrun_access import write_declarations

    write_declarations(api_settings, ("A", "B", "B"))
    with session_scope(api_settings.resolved_ops_db_url) as session:
        user, _ = create_user(session, "ann", ["targeting_officer"], office_code="A", service=True)
        ann = bearer(issue_token(session, user, 60).token)
    rule = RULE.replace("unit_value_ratio < 30% and not aeo", "country_of_origin = 'CN'")
    asked = {"text": rule, "days": 30}
    everyone = client.post("/api/v1/rules/dry-run", json=asked, headers=bearer(token_for("analyst"))).json()
    mine = client.post("/api/v1/rules/dry-run", json=asked, headers=ann).json()
    assert (everyone["records"], everyone["hits"], everyone["office"]) == (3, 3, None)
    assert (mine["records"], mine["hits"], mine["sample_ids"], mine["office"]) == (1, 1, ["d0"], "A")
    assert [e["details"].get("office") for e in audit_of(client, token_for, "rule.dry_run")] == ["A", None]
    # A scope of another office: the note says so, in English and as its code (API compatible).
    scoped = rule.replace("kind: declaration", "kind: declaration\nscope: {offices: [B]}")
    hidden = client.post("/api/v1/rules/dry-run", json={"text": scoped, "days": 30}, headers=ann).json()
    (note,) = hidden["notes"]
    assert isinstance(note, str) and note.startswith(
        "your account sees office A only; the rule's scope names B"
    )
    params = {"office": "A", "offices": ["B"], "records": 1, "kind": "declaration"}
    assert hidden["note_codes"] == [{"code": "offices_hidden", "params": params}]


# -- input handling: say what is missing, refuse what is not known ------------------------------


def test_a_body_without_a_rule_says_it_is_missing_and_unknown_fields_are_refused(client, token_for) -> None:
    analyst = bearer(token_for("analyst"))
    err = assert_envelope(client.post("/api/v1/rules", json={}, headers=analyst), 422, "validation_error")
    (problem,) = err["details"]["fields"]
    assert "the rule is missing" in problem["problem"] and "not both" not in problem["problem"]
    both = {"text": RULE, "definition": {"id": "X"}}
    err = assert_envelope(client.post("/api/v1/rules", json=both, headers=analyst), 422, "validation_error")
    assert "not both" in err["details"]["fields"][0]["problem"]

    # A window asked in words the endpoint does not know is refused, not quietly replaced by the default.
    asked = {"text": RULE, "since": "2021-01-01"}
    err = assert_envelope(
        client.post("/api/v1/rules/dry-run", json=asked, headers=analyst), 422, "validation_error"
    )
    assert err["message"].endswith(": since") and err["details"]["fields"][0]["type"] == "extra_forbidden"
    client.post("/api/v1/rules", json={"text": RULE}, headers=analyst)
    base = "/api/v1/rules/API-UNDER-01/versions/1"
    for path, body in (
        (f"{base}/dry-run", {"days": 3, "from": "2021-01-01"}),
        (f"{base}/submit", {"note": "x"}),
    ):
        assert_envelope(client.post(path, json=body, headers=analyst), 422, "validation_error")
    too_long = client.post(f"{base}/dry-run", json={"days": 3661}, headers=analyst)
    assert assert_envelope(too_long, 422, "validation_error")["details"]["fields"][0]["field"] == "days"


def test_only_the_author_submits_a_draft_and_a_refusal_is_audited(client, token_for) -> None:
    analyst, officer = bearer(token_for("analyst")), bearer(token_for("targeting_officer"))
    client.post("/api/v1/rules", json={"text": RULE}, headers=analyst)
    refused = client.post("/api/v1/rules/API-UNDER-01/versions/1/submit", json={}, headers=officer)
    err = assert_envelope(refused, 403, "not_author")
    assert "written by 'u-analyst'" in err["message"] and "only its author submits it" in err["message"]
    assert client.get("/api/v1/rules/API-UNDER-01", headers=officer).json()["latest_status"] == "draft"
    (entry,) = audit_of(client, token_for, "rule.submit")
    assert (entry["actor"], entry["outcome"], entry["details"]) == (
        "u-targeting_officer",
        "denied",
        {"version": 1, "reason": "not the author"},
    )
    submitted = client.post("/api/v1/rules/API-UNDER-01/versions/1/submit", json={}, headers=analyst)
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"


def test_a_non_finite_number_is_refused_when_stored_not_met_at_dry_run(client, token_for) -> None:
    analyst = bearer(token_for("analyst"))
    text = RULE.replace("unit_value_ratio < 30% and not aeo", "net_mass_kg > 1e999 or net_mass_kg < -1e999")
    err = assert_envelope(
        client.post("/api/v1/rules", json={"text": text}, headers=analyst), 422, "rule_invalid"
    )
    assert (err["details"]["field"], err["details"]["line"], err["details"]["column"]) == ("when", 1, 15)
    err = assert_envelope(
        client.post("/api/v1/rules/dry-run", json={"text": text}, headers=analyst), 422, "rule_invalid"
    )
    assert "too large a number" in err["message"]
