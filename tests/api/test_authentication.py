"""Authentication on every endpoint: a new route without it fails here."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from sciti.access import create_user, issue_token, revoke_user_tokens
from sciti.api.app import PUBLIC_PATHS, create_app
from sciti.api.routes import served_routes
from sciti.ops import session_scope
from tests.api.conftest import assert_envelope, bearer


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _protected(app):
    return [
        (method, route.path)
        for route in served_routes(app)
        if route.path not in PUBLIC_PATHS
        for method in sorted(route.methods - {"HEAD"})
    ]


def test_there_are_protected_routes_and_the_public_list_is_real(settings):
    app = create_app(settings)
    served = {r.path for r in served_routes(app)}
    assert served >= PUBLIC_PATHS, PUBLIC_PATHS - served  # no stale exemptions
    assert len(_protected(app)) >= 10


NO_VALID_TOKEN = [
    ({}, "authentication_required"),
    (bearer("sciti_" + "A" * 43), "invalid_token"),  # well-formed, unknown
    (bearer("not-a-token"), "invalid_token"),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "authentication_required"),
]


def test_every_non_public_route_answers_401_without_a_valid_token(client):
    for headers, code in NO_VALID_TOKEN:
        for method, path in _protected(client.app):
            response = client.request(method, _concrete(path), headers=headers)
            err = assert_envelope(response, 401, code)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)
            assert err["remedy"], (method, path)


def test_the_check_catches_a_route_without_authentication(sqlite_api_settings):
    app = create_app(sqlite_api_settings)

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict:
        return {"secret": "data"}

    with TestClient(app) as c:
        answers = {path: c.request(m, _concrete(path)).status_code for m, path in _protected(app)}
    assert answers["/api/v1/forgotten"] == 200  # what the test above would flag
    assert {p for p, status in answers.items() if status != 401} == {"/api/v1/forgotten"}


@pytest.mark.parametrize("state", ["expired", "revoked", "disabled"])
def test_dead_tokens_are_refused(api_settings, client, state):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        user, _ = create_user(s, "carol", ["viewer"], service=True)
        issued = issue_token(s, user, 1)
        if state == "expired":
            from datetime import timedelta

            from sciti.ops import ApiToken

            s.get(ApiToken, issued.token_id).expires_at = issued.expires_at - timedelta(minutes=2)
        elif state == "revoked":
            revoke_user_tokens(s, user.id)
        else:
            user.disabled = True
    assert_envelope(client.get("/api/v1/me", headers=bearer(issued.token)), 401, "invalid_token")


def test_public_paths_answer_without_a_token(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/docs").status_code == 200
    # the token endpoint is reachable, and refuses bad credentials with the envelope
    assert_envelope(
        client.post("/api/v1/auth/token", json={"username": "x", "password": "y"}), 401, "invalid_credentials"
    )
