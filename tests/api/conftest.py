"""An API over a fresh instance (SQLite, and the real PostgreSQL), and tokens for any role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from sciti.access import create_user, issue_token
from sciti.api.app import create_app
from sciti.ops import migrate, session_scope
from sciti.settings import Settings

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def api_settings(request: pytest.FixtureRequest) -> Settings:
    """An instance with a migrated operational DB, on each backend in turn."""
    s = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(s.resolved_ops_db_url)
    return s


@pytest.fixture
def sqlite_api_settings(settings: Settings) -> Settings:
    migrate(settings.resolved_ops_db_url)
    return settings


def make_client(settings: Settings) -> TestClient:
    # raise_server_exceptions=False: a 500 must come back as the envelope, as a real client sees it.
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with make_client(api_settings) as c:
        yield c


TokenFactory = Callable[..., str]


def token_factory(settings: Settings) -> TokenFactory:
    """Tokens for service accounts (no password: no Argon2 cost) with the given roles."""
    made: dict[tuple[str, ...], str] = {}

    def make(*roles: str) -> str:
        if roles not in made:
            with session_scope(settings.resolved_ops_db_url) as session:
                user, _ = create_user(session, f"u-{'-'.join(roles) or 'none'}", roles, service=True)
                made[roles] = issue_token(session, user, 60).token
        return made[roles]

    return make


@pytest.fixture
def token_for(api_settings: Settings) -> TokenFactory:
    return token_factory(api_settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_envelope(response, status: int, code: str) -> dict:
    """The response is the error envelope with this status and code; returns its inner object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "remedy", "details", "request_id"}, err
    assert err["code"] == code, err
    assert err["message"]
    assert err["request_id"] == response.headers["x-request-id"]
    return err
