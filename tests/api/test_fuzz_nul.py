"""A NUL character (PostgreSQL text cannot hold it) in any free-text input: 422 naming the field.

Every string field of a few endpoints gets a NUL in turn, in JSON bodies, forms, the query and the
path, on SQLite and on the real PostgreSQL (where it used to be a 500 from deep in a query).
"""

from __future__ import annotations

from typing import Any

import pytest

from sciti.access import create_user
from sciti.ops import session_scope
from tests.api.conftest import assert_envelope, bearer

NUL = "a\x00b"
PASSWORD = "harbour-lantern-quietly-7"

# (method, path, role or None, body kind, a valid body or params) -> each string field is poisoned.
JSON_CASES: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("POST", "/api/v1/auth/token", None, {"username": "alice", "password": PASSWORD, "totp": "123456"}),
    ("POST", "/api/v1/auth/session", None, {"username": "alice", "password": PASSWORD}),
    (
        "POST",
        "/api/v1/auth/password",
        None,
        {"username": "alice", "current_password": PASSWORD, "new_password": "x" * 14, "totp": "1"},
    ),
    (
        "POST",
        "/api/v1/users",
        "administrator",
        {"username": "newbie", "roles": ["viewer"], "office_code": "HKG", "display_name": "New Bie"},
    ),
    ("POST", "/api/v1/sql", "analyst", {"sql": "SELECT 1 AS one"}),
]


def _poisoned(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One body per string (or string list item) field, with NUL in that field only."""
    out = []
    for name, value in body.items():
        if isinstance(value, str):
            out.append((name, {**body, name: NUL}))
        elif isinstance(value, list):
            out.append((f"{name}.0", {**body, name: [NUL]}))
    return out


@pytest.fixture
def alice(api_settings) -> str:
    with session_scope(api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return "alice"


def _refused(response, field: str, location: str) -> None:
    err = assert_envelope(response, 422, "validation_error")
    problem = {(f["location"], f["field"], f["type"]) for f in err["details"]["fields"]}
    assert problem == {(location, field, "string_nul")}, err
    assert "\x00" not in response.text  # nothing echoed back


@pytest.mark.parametrize(("method", "path", "role", "body"), JSON_CASES, ids=[c[1] for c in JSON_CASES])
def test_nul_in_any_json_field_is_a_422_naming_it(client, token_for, alice, method, path, role, body):
    headers = bearer(token_for(role)) if role else {}
    for field, poisoned in _poisoned(body):
        response = client.request(method, path, json=poisoned, headers=headers)
        _refused(response, field, "body")
    # Nested deeper, and in a key: still found.
    response = client.post(
        "/api/v1/sql",
        json={"sql": "SELECT 1", "params": {"k\x00": [1, {"x": NUL}]}},
        headers=bearer(token_for("analyst")),
    )
    assert_envelope(response, 422, "validation_error")


def test_nul_in_a_login_form_is_a_422(client, alice):
    for field in ("username", "password"):
        form = {"username": "alice", "password": PASSWORD, field: NUL}
        _refused(client.post("/api/v1/auth/token", data=form), field, "body")
        page = client.post("/ui/login", data=form)  # the web app answers the same refusal in HTML
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert f"not valid: {field}" in page.text and "\x00" not in page.text


def test_nul_in_the_query_or_path_is_a_422(client, token_for):
    admin = bearer(token_for("administrator"))
    _refused(
        client.get("/api/v1/audit", params={"actor": NUL}, headers=bearer(token_for("security_officer"))),
        "actor",
        "query",
    )
    _refused(client.get("/api/v1/users/a%00b", headers=admin), "path", "path")
    _refused(client.get("/api/v1/batches/a%00b", headers=admin), "path", "path")


def test_text_without_nul_still_works(client, token_for, alice):
    ok = client.post("/api/v1/auth/token", json={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    # A literal backslash-u-0000 in SQL text is six characters, not a NUL: accepted.
    sql = client.post(
        "/api/v1/sql", json={"sql": "SELECT '\\u0000' AS s"}, headers=bearer(token_for("analyst"))
    )
    assert sql.status_code == 200, sql.text
