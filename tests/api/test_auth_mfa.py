"""MFA over HTTP: enrol, confirm, log in with a code, replay refused, recovery codes, admin reset."""

from __future__ import annotations

import time

import pyotp
import pytest

from sciti.access import create_user
from sciti.ops import session_scope
from tests.api.conftest import assert_envelope, bearer, token_factory

PASSWORD = "harbour-lantern-quietly-7"
CREDS = {"username": "alice", "password": PASSWORD}


@pytest.fixture
def alice(api_settings):
    with session_scope(api_settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=PASSWORD)
    return "alice"


def _token(client, **extra) -> str:
    answer = client.post("/api/v1/auth/token", json={**CREDS, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _steps(otp: pyotp.TOTP) -> tuple[str, str]:
    """Codes of the previous and the current 30-second step (the server accepts one step of drift).

    Taken away from a step boundary, so both are still valid when the server checks them.
    """
    if time.time() % 30 > 27:
        time.sleep(3.5)
    now = time.time()
    return otp.at(now - 30), otp.at(now)


def test_mfa_flow_over_http(api_settings, client, alice):
    token = _token(client)
    assert client.get("/api/v1/mfa", headers=bearer(token)).json() == {
        "enabled": False,
        "pending": False,
        "recovery_codes_left": 0,
    }
    # enrolling needs the current password as well as the token
    assert_envelope(
        client.post("/api/v1/mfa/enrol", headers=bearer(token), json={}), 401, "invalid_credentials"
    )
    started = client.post("/api/v1/mfa/enrol", headers=bearer(token), json={"password": PASSWORD}).json()
    otp = pyotp.parse_uri(started["otpauth_uri"])
    previous, code = _steps(otp)
    codes = client.post("/api/v1/mfa/confirm", headers=bearer(token), json={"code": previous}).json()[
        "recovery_codes"
    ]
    assert len(codes) == 10

    # from now on the password alone is not enough, and the answer says what is missing
    err = assert_envelope(client.post("/api/v1/auth/token", json=CREDS), 401, "mfa_required")
    assert "totp" in err["remedy"]
    # nor to change the password without logging in
    change = {"username": "alice", "current_password": PASSWORD, "new_password": "violet-ferry-morning-42"}
    assert_envelope(client.post("/api/v1/auth/password", json=change), 401, "mfa_required")
    assert _token(client, totp=code)
    # the same code again is a replay
    assert_envelope(client.post("/api/v1/auth/token", json={**CREDS, "totp": code}), 401, "invalid_mfa_code")
    # a recovery code works once; form posts carry the field too
    form = client.post("/api/v1/auth/token", data={**CREDS, "totp": codes[0]})
    assert form.status_code == 200, form.text
    assert_envelope(
        client.post("/api/v1/auth/token", json={**CREDS, "totp": codes[0]}), 401, "invalid_mfa_code"
    )
    assert client.get("/api/v1/mfa", headers=bearer(token)).json()["recovery_codes_left"] == 9

    # an administrator resets it (lost phone): password alone works again, old tokens are gone
    admin = token_factory(api_settings)("administrator")
    reset = client.post("/api/v1/users/alice/reset-mfa", headers=bearer(admin))
    assert reset.json() == {"username": "alice", "mfa_removed": True}
    assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401, "invalid_token")
    assert _token(client)


def test_users_without_the_permission_cannot_reset_anyones_mfa(sqlite_api_settings):
    from tests.api.conftest import make_client

    client = make_client(sqlite_api_settings)
    analyst = token_factory(sqlite_api_settings)("analyst")
    assert_envelope(client.post("/api/v1/users/alice/reset-mfa", headers=bearer(analyst)), 403, "forbidden")
