"""Single sign-on against a real OpenID Connect provider on loopback (authorization code + PKCE)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import select

from sciti.access import list_entries
from sciti.access.sso import SsoSettings
from sciti.ops import User, session_scope
from sciti.ops.account_tables import SsoIdentity
from tests.access.oidc_provider import CLIENT_ID, CLIENT_SECRET, Person, Provider
from tests.api.conftest import assert_envelope, make_client

CALLBACK = "http://testserver/api/v1/auth/sso/callback"


def _sso(provider: Provider, **overrides) -> SsoSettings:
    base = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "role_map": {"risk-analysts": ["analyst"], "it-security": ["security_officer", "viewer"]},
        "allowed_domains": ["customs.example"],
    }
    base.update(overrides)
    return SsoSettings(**base)


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider().start()
    p.redirect_uris.append(CALLBACK)
    yield p
    p.stop()


def _client(settings, sso: SsoSettings) -> TestClient:
    client = make_client(settings)
    client.app.state.sso_settings = sso
    return client


def _to_provider(client: TestClient, next_url: str = "/risk/queue") -> str:
    started = client.get("/api/v1/auth/sso/login", params={"next": next_url}, follow_redirects=False)
    assert started.status_code == 302, started.text
    return started.headers["location"]


def _at_provider(authorize_url: str) -> str:
    """The browser at the provider: the user is signed in there; returns our callback URL."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix("http://testserver")


def test_sso_login_provisions_the_user_and_starts_a_session(sqlite_api_settings, provider):
    client = _client(sqlite_api_settings, _sso(provider))
    authorize = _to_provider(client)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0] and query["client_id"] == [CLIENT_ID]

    done = client.get(_at_provider(authorize))
    assert done.status_code == 200, done.text
    assert 'url=/risk/queue"' in done.text
    cookie = done.headers["set-cookie"]
    assert "sciti_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # the code was exchanged with the PKCE verifier, authenticated with the client secret
    assert provider.token_requests[-1]["code_verifier"]

    me = client.get("/api/v1/me").json()
    assert me["username"] == "ada@customs.example" and me["roles"] == ["analyst"]
    assert me["display_name"] == "Ada Lovelace"
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, action="login")
    assert entry.actor == "ada@customs.example" and entry.details["method"] == "sso"
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        link = s.scalars(select(SsoIdentity)).one()
        user = s.get(User, link.user_id)
        assert (link.issuer, link.subject) == (provider.issuer, "u-1001")
        assert user.password_hash is None  # an SSO account has no local password


def test_roles_follow_the_provider_at_every_login(sqlite_api_settings, provider):
    client = _client(sqlite_api_settings, _sso(provider))
    client.get(_at_provider(_to_provider(client)))
    provider.person.groups = ["it-security"]
    client.get(_at_provider(_to_provider(client)))
    assert client.get("/api/v1/me").json()["roles"] == ["security_officer", "viewer"]


def _callback_error(client: TestClient, path: str, text: str) -> None:
    err = assert_envelope(client.get(path), 401, "sso_error")
    assert text in err["message"], err


def test_state_is_single_use_and_bound_to_the_browser(sqlite_api_settings, provider):
    sso = _sso(provider)
    client = _client(sqlite_api_settings, sso)
    callback = _at_provider(_to_provider(client))
    # another browser (no state cookie) cannot complete this login: login CSRF / link theft
    other = _client(sqlite_api_settings, sso)
    _callback_error(other, callback, "different browser")
    # the state was burned by that attempt: it cannot be used again, even by the right browser
    _callback_error(client, callback, "unknown or used state")
    # a made-up state
    _callback_error(client, "/api/v1/auth/sso/callback?state=forged&code=abc", "unknown or used state")
    assert client.get("/api/v1/me").status_code == 401
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        refused = list_entries(s, action="login.failed")
    assert len(refused) == 3 and {e.details["method"] for e in refused} == {"sso"}


def test_a_replayed_authorization_code_is_refused(sqlite_api_settings, provider):
    client = _client(sqlite_api_settings, _sso(provider))
    callback = _at_provider(_to_provider(client))
    assert client.get(callback).status_code == 200
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # a new login's state with the old code: the provider refuses the code a second time
    fresh = parse_qs(urlsplit(_at_provider(_to_provider(client))).query)["state"][0]
    _callback_error(
        client, f"/api/v1/auth/sso/callback?state={fresh}&code={code}", "refused the authorization code"
    )


def test_an_id_token_signed_with_an_unpublished_key_is_refused(sqlite_api_settings):
    provider = Provider(sign_with_other_key=True).start()
    provider.redirect_uris.append(CALLBACK)
    try:
        client = _client(sqlite_api_settings, _sso(provider))
        _callback_error(client, _at_provider(_to_provider(client)), "id_token from the provider is not valid")
    finally:
        provider.stop()


def test_a_wrong_nonce_is_refused(sqlite_api_settings, provider):
    provider.nonce_override = "not-the-nonce-we-sent"
    client = _client(sqlite_api_settings, _sso(provider))
    _callback_error(client, _at_provider(_to_provider(client)), "nonce")


REFUSED = [
    (Person("u-2", "eve@elsewhere.example", groups=["risk-analysts"]), {}, "domain"),
    (Person("u-3", "bob@customs.example", groups=["canteen"]), {}, "maps to a SCITI role"),
    (
        Person("u-4", "kim@customs.example", groups=["risk-analysts"], email_verified=False),
        {},
        "not verified",
    ),
]


@pytest.mark.parametrize(("person", "overrides", "text"), REFUSED, ids=["domain", "no-role", "unverified"])
def test_policy_refusals(sqlite_api_settings, provider, person, overrides, text):
    provider.person = person
    client = _client(sqlite_api_settings, _sso(provider, **overrides))
    _callback_error(client, _at_provider(_to_provider(client)), text)
    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        assert s.scalars(select(User).where(User.username == person.email)).first() is None


def test_an_existing_local_account_is_not_taken_over(sqlite_api_settings, provider):
    from sciti.access import create_user

    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        create_user(s, "ada@customs.example", ["administrator"], service=True)
    client = _client(sqlite_api_settings, _sso(provider))
    _callback_error(client, _at_provider(_to_provider(client)), "already exists")


def test_unconfigured_sso_says_how_to_configure_it(sqlite_api_settings):
    client = _client(sqlite_api_settings, SsoSettings())
    err = assert_envelope(client.get("/api/v1/auth/sso/login", follow_redirects=False), 401, "sso_error")
    assert "[sso]" in err["remedy"]


def test_next_is_never_an_open_redirect():
    from sciti.access.sso import safe_next

    assert [safe_next(u) for u in ("/a?b=1", "//evil.example", "https://evil.example", None, "/\\evil")] == [
        "/a?b=1",
        "/",
        "/",
        "/",
        "/",
    ]


def test_the_client_secret_can_come_from_the_secrets_store_by_name(
    sqlite_api_settings, provider, monkeypatch
):
    from sciti.access.secrets import env_var

    # the development fallback of the secrets resolver: the store is asked first, then SCITI_SECRET_<NAME>
    monkeypatch.setenv(env_var("idp-client"), CLIENT_SECRET)
    sso = _sso(provider, client_secret=None, client_secret_name="idp-client")
    client = _client(sqlite_api_settings, sso)
    assert client.get(_at_provider(_to_provider(client))).status_code == 200
    assert client.get("/api/v1/me").json()["username"] == "ada@customs.example"
    # a wrong name is a clear refusal, not an unauthenticated request to the provider
    client = _client(sqlite_api_settings, _sso(provider, client_secret=None, client_secret_name="nope"))
    _callback_error(client, _at_provider(_to_provider(client)), "'nope' is not in the secrets store")


LOGIN_PAGE = "http://testserver/ui/login"


def _signed_in(client: TestClient, provider: Provider) -> None:
    assert client.get(_at_provider(_to_provider(client))).status_code == 200
    assert provider.person.sub in provider.signed_in


def _web_logout(client: TestClient):
    csrf = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    out = client.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303, out.text
    return out


def test_web_logout_after_sso_ends_the_provider_session_too(sqlite_api_settings, provider):
    provider.post_logout_redirect_uris.append(LOGIN_PAGE)
    client = _client(sqlite_api_settings, _sso(provider))
    _signed_in(client, provider)
    location = _web_logout(client).headers["location"]
    assert location.startswith(f"{provider.issuer}/logout?")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == [LOGIN_PAGE] and query["client_id"] == [CLIENT_ID]
    assert client.get("/api/v1/me").status_code == 401  # SCITI's session ended before the provider's
    # The browser at the provider: it checks the id_token_hint, ends its session, sends us back.
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["location"] == LOGIN_PAGE
    assert provider.person.sub not in provider.signed_in
    assert provider.logouts == [{"sub": "u-1001", "post_logout_redirect_uri": LOGIN_PAGE}]


def test_the_provider_refuses_a_forged_id_token_hint(sqlite_api_settings, provider):
    provider.post_logout_redirect_uris.append(LOGIN_PAGE)
    client = _client(sqlite_api_settings, _sso(provider))
    _signed_in(client, provider)
    location = _web_logout(client).headers["location"]
    hint = parse_qs(urlsplit(location).query)["id_token_hint"][0]
    header, claims, signature = hint.split(".")
    forged = location.replace(hint, f"{header}.{claims}.{signature[:-4]}AAAA")
    assert requests.get(forged, allow_redirects=False, timeout=10).status_code == 400
    assert provider.person.sub in provider.signed_in  # the real hint is what the provider trusts


def test_logout_stays_local_without_an_end_session_endpoint(sqlite_api_settings, provider):
    provider.end_session = False
    client = _client(sqlite_api_settings, _sso(provider))
    _signed_in(client, provider)
    assert _web_logout(client).headers["location"] == "/ui/login"
    assert client.get("/api/v1/me").status_code == 401


def test_a_password_session_never_goes_to_the_provider(sqlite_api_settings, provider):
    from sciti.access import create_user
    from sciti.access.sso import LOGOUT_COOKIE

    with session_scope(sqlite_api_settings.resolved_ops_db_url) as s:
        create_user(s, "bob", ["viewer"], password="harbour-lantern-quietly-7")
    client = _client(sqlite_api_settings, _sso(provider))
    _signed_in(client, provider)  # an SSO session first, leaving its sealed id_token behind ...
    hint = client.cookies.get(LOGOUT_COOKIE)
    assert hint
    login = client.post(
        "/api/v1/auth/session", json={"username": "bob", "password": "harbour-lantern-quietly-7"}
    )
    assert login.status_code == 200
    client.cookies.set(LOGOUT_COOKIE, hint)  # ... still there: it is bound to the old session id
    assert _web_logout(client).headers["location"] == "/ui/login"
    assert provider.logouts == []


def test_api_logout_of_an_sso_session_names_the_end_session_url(sqlite_api_settings, provider):
    provider.post_logout_redirect_uris.append("http://testserver/")
    client = _client(sqlite_api_settings, _sso(provider))
    _signed_in(client, provider)
    csrf = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    answer = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and answer.json()["revoked"] is True
    url = answer.json()["end_session_url"]
    assert requests.get(url, allow_redirects=False, timeout=10).headers["location"] == "http://testserver/"
    assert provider.person.sub not in provider.signed_in


def test_sso_settings_come_from_the_one_sciti_toml_reader(tmp_path, monkeypatch):
    import sciti.access.sso as sso_module
    from sciti.settings import Settings

    monkeypatch.chdir(tmp_path)
    for name in ("SCITI_SSO_ISSUER", "SCITI_SSO_CLIENT_ID", "SCITI_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert SsoSettings().configured is False  # no file: nothing configured
    (tmp_path / "sciti.toml").write_text(
        'port = 8123\n[sso]\nissuer = "https://idp.customs.example"\nclient_id = "sciti"\n'
        'role_map = {"risk" = ["analyst"]}\n',
        "utf-8",
    )
    sso = SsoSettings()
    assert (sso.issuer, sso.client_id, sso.role_map) == (
        "https://idp.customs.example",
        "sciti",
        {"risk": ["analyst"]},
    )
    assert Settings().port == 8123  # the same file feeds the core settings (which ignore [sso])
    monkeypatch.setenv("SCITI_SSO_CLIENT_ID", "from-env")
    assert SsoSettings().client_id == "from-env"  # the environment wins over the file
    assert not hasattr(sso_module, "_SsoTable")  # one reader of sciti.toml: sciti.settings.toml_source
