"""The secrets API: metadata only, changes for secrets.manage, values never in a response."""

from __future__ import annotations

from sciti.access.secrets import SecretsService, forget
from tests.api.conftest import bearer, make_client, token_factory

VALUE = "api-Secret-Value-123"


def test_put_rotate_share_delete_over_http(sqlite_api_settings):
    forget()
    tokens = token_factory(sqlite_api_settings)
    eng, analyst = bearer(tokens("data_engineer")), bearer(tokens("analyst"))
    with make_client(sqlite_api_settings) as client:
        r = client.put("/api/v1/secrets/kcs-db", json={"value": VALUE, "description": "KCS"}, headers=eng)
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1 and r.json()["shared_with"] == ["data_engineer"]
        r = client.post("/api/v1/secrets/kcs-db/rotate", json={"value": VALUE + "2"}, headers=eng)
        assert r.json()["versions"] == [1, 2]
        listed = client.get("/api/v1/secrets", headers=eng)
        assert [s["name"] for s in listed.json()] == ["kcs-db"]
        r = client.put("/api/v1/secrets/kcs-db/shared-with", json={"roles": ["administrator"]}, headers=eng)
        assert r.json()["shared_with"] == ["administrator"]
        # No longer shared with data_engineer: the engineer cannot change it any more.
        r = client.post("/api/v1/secrets/kcs-db/rotate", json={"value": "x"}, headers=eng)
        assert r.status_code == 403 and r.json()["error"]["code"] == "secret_forbidden"
        assert client.get("/api/v1/secrets", headers=analyst).status_code == 403
        assert client.put("/api/v1/secrets/x", json={"value": ""}, headers=eng).status_code == 422
        assert client.get("/api/v1/secrets/nope", headers=eng).status_code == 404
        admin = bearer(tokens("administrator"))
        assert client.delete("/api/v1/secrets/kcs-db", headers=admin).status_code == 204
        bodies = [listed.text, r.text]
    assert all(VALUE not in b for b in bodies)
    assert SecretsService(sqlite_api_settings).list() == []
