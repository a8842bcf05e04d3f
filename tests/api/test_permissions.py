"""Allow/deny table: every protected endpoint x every role. A new endpoint without a row fails.

The table is split by area (tests/api/allowed/*.py) and merged into one; keep it the one place.
"""

from __future__ import annotations

import re

import pytest

from sciti.access import all_roles
from sciti.api.app import PUBLIC_PATHS
from sciti.api.routes import served_routes
from tests.api.allowed import merged
from tests.api.conftest import bearer, make_client, token_factory

# (method, path) -> roles allowed, one module per area under tests/api/allowed/. Others get 403.
ALLOWED = merged()


def _routes(settings):
    app = make_client(settings).app
    return {
        (m, r.path) for r in served_routes(app) if r.path not in PUBLIC_PATHS for m in r.methods - {"HEAD"}
    }


def test_every_protected_endpoint_has_a_row(sqlite_api_settings):
    served = _routes(sqlite_api_settings)
    optional = {("POST", "/api/v1/ingest/{source}")}  # present only when the ingest router is installed
    assert served - ALLOWED.keys() == set(), "add these endpoints to ALLOWED"
    assert ALLOWED.keys() - served <= optional, "stale rows in ALLOWED"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sciti.ops import migrate
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("perm") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    tokens = token_factory(s)
    client = make_client(s)
    return client, {role: tokens(role) for role in all_roles()}


@pytest.mark.parametrize("role", sorted(all_roles()))
def test_allow_deny_table(world, role):
    client, tokens = world
    served = {(m, p) for (m, p) in ALLOWED if any(r.path == p for r in served_routes(client.app))}
    for method, path in sorted(served):
        if path == "/api/v1/auth/logout":
            continue  # would revoke the token the rest of the table uses; checked below
        response = client.request(method, re.sub(r"\{[^}]+\}", "1", path), headers=bearer(tokens[role]))
        if role in ALLOWED[(method, path)]:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", sorted(all_roles()))
def test_every_role_may_log_out(tmp_path, role):
    from sciti.ops import migrate
    from tests.conftest import make_settings

    home = tmp_path / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    token = token_factory(s)(role)
    client = make_client(s)
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).json() == {"revoked": True}
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
