"""Privacy over HTTP: retention rules and a run, consents, transfer rules and their checks."""

from __future__ import annotations

from tests.api.conftest import bearer, make_client, token_factory


def test_privacy_endpoints_end_to_end(sqlite_api_settings):
    tokens = token_factory(sqlite_api_settings)
    sec = bearer(tokens("security_officer"))
    with make_client(sqlite_api_settings) as client:
        rules = {r["kind"]: r for r in client.get("/api/v1/privacy/retention", headers=sec).json()}
        assert rules["passenger"]["days"] == 1825 and rules["passenger"]["origin"] == "default"
        override = {"days": 400, "reason": "law"}
        r = client.put("/api/v1/privacy/retention/passenger", json=override, headers=sec)
        assert r.status_code == 200 and r.json()["origin"] == "override", r.text
        r = client.put("/api/v1/privacy/retention/nokind", json={"days": 4}, headers=sec)
        assert r.status_code == 422 and r.json()["error"]["code"] == "privacy_error"
        run = client.post("/api/v1/privacy/retention/run", json={"kinds": ["passenger"]}, headers=sec)
        assert run.status_code == 200 and run.json()["tables"][0]["rows_deleted"] == 0, run.text
        assert run.json()["tables"][0]["copies"]["risk.assessments"] == 0
        assert run.json()["files"]["objects_deleted"] == 0  # received files: none past their rows
        assert client.delete("/api/v1/privacy/retention/passenger", headers=sec).status_code == 204

        consent = {
            "subject_ref": "P:M1",
            "holder": "immigration",
            "recipient": "customs",
            "purpose": "case 9",
            "valid_from": "2026-01-01",
            "valid_until": "2099-12-31",
        }
        r = client.post("/api/v1/privacy/consents", json=consent, headers=sec)
        assert r.status_code == 201 and r.json()["recorded_by"] == "u-security_officer", r.text
        check = {k: consent[k] for k in ("subject_ref", "holder", "recipient", "purpose")}
        assert client.post("/api/v1/privacy/consents/check", json=check, headers=sec).json()["allowed"]
        cid = r.json()["id"]
        assert client.post(f"/api/v1/privacy/consents/{cid}/withdraw", headers=sec).json()["withdrawn_by"]
        assert not client.post("/api/v1/privacy/consents/check", json=check, headers=sec).json()["allowed"]
        assert len(client.get("/api/v1/privacy/consents", headers=sec).json()) == 1

        r = client.put(
            "/api/v1/privacy/transfer-rules/JP/declaration",
            json={"fields": ["declaration_id", "office_code"], "legal_basis": "CMAA"},
            headers=sec,
        )
        assert r.status_code == 200, r.text
        ask = {"kind": "declaration", "partner": "JP", "fields": ["declaration_id", "invoice_amount"]}
        verdict = client.post("/api/v1/privacy/transfer-rules/check", json=ask, headers=sec).json()
        assert not verdict["allowed"] and verdict["refused_fields"] == ["invoice_amount"]
        assert client.delete("/api/v1/privacy/transfer-rules/JP/declaration", headers=sec).status_code == 204
        assert client.get("/api/v1/privacy/transfer-rules", headers=sec).json() == []
        assert client.get("/api/v1/privacy/consents", headers=bearer(tokens("analyst"))).status_code == 403
