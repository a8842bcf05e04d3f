"""One error envelope for every failure: routing, validation, our errors, and the unexpected."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sciti.api.app import create_app
from sciti.errors import Conflict, NotFound, SCITIError
from tests.api.conftest import assert_envelope, bearer, token_factory


@pytest.fixture
def app_with_faults(sqlite_api_settings):
    """The real app plus a few routes that fail on purpose (behind authentication, like all)."""
    from fastapi import Depends

    from sciti.access import current_principal

    app = create_app(sqlite_api_settings)

    @app.get("/api/v1/test/boom", dependencies=[Depends(current_principal)])
    def boom() -> dict:
        raise RuntimeError("secret internals: password=hunter2hunter2")

    @app.get("/api/v1/test/conflict", dependencies=[Depends(current_principal)])
    def conflict() -> dict:
        raise Conflict("batch b1 is already running", remedy="wait for it", details={"batch_id": "b1"})

    @app.get("/api/v1/test/plain", dependencies=[Depends(current_principal)])
    def plain() -> dict:
        raise SCITIError("something of ours failed")

    client = TestClient(app, raise_server_exceptions=False)
    return client, token_factory(sqlite_api_settings)("viewer")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/thing", 404, "not_found"),
        ("GET", "/api/v1/batches/missing-batch", 404, "not_found"),
        ("DELETE", "/api/v1/me", 405, "method_not_allowed"),
        ("GET", "/api/v1/batches?limit=0", 422, "validation_error"),
        ("GET", "/api/v1/test/boom", 500, "internal_error"),
        ("GET", "/api/v1/test/conflict", 409, "conflict"),
        ("GET", "/api/v1/test/plain", 500, "sciti_error"),
    ],
)
def test_failures_share_one_envelope(app_with_faults, method, path, status, code):
    client, token = app_with_faults
    err = assert_envelope(client.request(method, path, headers=bearer(token)), status, code)
    assert "hunter2" not in str(err) and "RuntimeError" not in str(err)  # no internals leak


def test_our_errors_carry_remedy_and_details(app_with_faults):
    client, token = app_with_faults
    err = assert_envelope(client.get("/api/v1/test/conflict", headers=bearer(token)), 409, "conflict")
    assert err["remedy"] == "wait for it" and err["details"] == {"batch_id": "b1"}
    assert NotFound.http_status == 404


def test_validation_lists_every_field_without_echoing_values(app_with_faults):
    client, token = app_with_faults
    response = client.post("/api/v1/auth/token", json={"username": "a"})
    err = assert_envelope(response, 422, "validation_error")
    assert [f["field"] for f in err["details"]["fields"]] == ["password"]
    err = assert_envelope(
        client.get("/api/v1/batches?limit=9999&offset=-1", headers=bearer(token)), 422, "validation_error"
    )
    assert {f["field"] for f in err["details"]["fields"]} == {"limit", "offset"}
    assert "9999" not in str(err)


def test_405_names_the_allowed_methods(app_with_faults):
    client, token = app_with_faults
    err = assert_envelope(client.put("/api/v1/sql", headers=bearer(token)), 405, "method_not_allowed")
    assert err["details"]["allowed"] == ["POST"]


@pytest.mark.parametrize(
    ("sent", "kept"), [("abc-123.X_y", True), ("bad id with spaces", False), ("x" * 65, False)]
)
def test_request_id_is_taken_from_the_caller_when_sane(app_with_faults, sent, kept):
    client, _ = app_with_faults
    response = client.get("/api/v1/me", headers={"X-Request-ID": sent})
    err = assert_envelope(response, 401, "authentication_required")
    assert (err["request_id"] == sent) is kept


def test_invalid_json_is_a_body_error_with_its_position(app_with_faults):
    client, token = app_with_faults
    body = b'{"sql": "SELECT 1", "limit": hunter2hunter2}'
    headers = bearer(token) | {"Content-Type": "application/json"}
    response = client.post("/api/v1/sql", content=body, headers=headers)
    err = assert_envelope(response, 422, "validation_error")
    assert err["details"]["fields"] == [
        {
            "location": "body",
            "field": "body",
            "problem": "not valid JSON (at character 29): Expecting value",
            "type": "json_invalid",
        }
    ]
    assert err["message"] == "the request is invalid: body"
    assert "hunter2" not in response.text
