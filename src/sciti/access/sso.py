"""Single sign-on with an enterprise identity provider: OpenID Connect, authorization code + PKCE.

authlib is the client (authorization URL with S256 PKCE, code exchange) and authlib/joserfc check
the id_token: signature against the provider's published keys (asymmetric algorithms only),
issuer, audience, expiry and the nonce of this login. The login state lives server-side
(``sso_requests``: state, nonce, PKCE verifier, used once, 10 minutes) and is also bound to the
browser that started it by a short cookie, so a callback URL replayed in another browser fails.

Accounts are provisioned just in time: the (issuer, subject) pair names the account for good;
roles come from a claim (e.g. ``groups``) mapped to SCITI roles at every login, so the identity
provider stays the one place where an SSO user's access is decided.

Single logout (RP-initiated, OpenID Connect RP-Initiated Logout 1.0): when the provider advertises
an ``end_session_endpoint``, logging out of SCITI also sends the browser there with the login's
id_token as ``id_token_hint`` and ``post_logout_redirect_uri``. The id_token is kept in the
browser, sealed (AES-GCM under the instance key, bound to the session id), not in the database.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from sciti.access.accounts import account_usable, as_utc, create_user, find_user, now_utc, token_hash
from sciti.access.audit import audit
from sciti.access.errors import MfaError, SsoError
from sciti.access.keys import decrypt, encrypt
from sciti.access.roles import validate_roles
from sciti.ops import User
from sciti.ops.account_tables import SsoIdentity, SsoRequest
from sciti.settings import toml_source

STATE_COOKIE = "sciti_sso_state"
LOGOUT_COOKIE = "sciti_sso_logout"  # the sealed id_token of an SSO session, for single logout
REQUEST_MINUTES = 10
_SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_METADATA_SECONDS = 300  # discovery document and keys are re-read at most this often


class SsoSettings(BaseSettings):
    """``[sso]`` in sciti.toml, or ``SCITI_SSO_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SCITI_SSO_", extra="ignore")

    issuer: str | None = Field(None, description="Issuer URL of the provider (discovery is read from it).")
    client_id: str | None = Field(None, description="Client id registered at the provider for SCITI.")
    client_secret_name: str = Field(
        "sso-client-secret", description="Name of the client secret in the secrets store."
    )
    client_secret: SecretStr | None = Field(
        None, description="The client secret itself (until the secrets store resolves client_secret_name)."
    )
    scopes: list[str] = Field(["openid", "email", "profile"], description="Scopes asked for.")
    username_claim: str = Field("email", description="Claim that becomes the SCITI username.")
    role_claim: str = Field("groups", description="Claim listing the user's groups or roles.")
    role_map: dict[str, list[str]] = Field(
        default_factory=dict, description="Provider group -> SCITI roles, e.g. {'customs-risk': ['analyst']}."
    )
    allowed_domains: list[str] = Field(
        default_factory=list, description="Email domains allowed to sign in (empty: any)."
    )
    redirect_uri: str | None = Field(
        None, description="Callback URL registered at the provider. Default: derived from the request."
    )
    post_logout_redirect_uri: str | None = Field(
        None,
        description="Where the provider sends the browser after single logout (register it there). "
        "Default: the web login page, derived from the request.",
    )
    http_timeout_seconds: float = Field(10.0, description="Timeout of calls to the provider.")

    @field_validator("role_map")
    @classmethod
    def _known_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for roles in value.values():
            validate_roles(roles)  # a typo in a role name is an error, never a silent no-role
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, toml_source(settings_cls, table="sso"))

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.client_id)


@dataclass(frozen=True)
class SsoLogin:
    """Where to send the browser, and the state to bind to it in a cookie."""

    url: str
    state: str


@dataclass(frozen=True)
class SsoResult:
    user: User
    next_url: str
    created: bool
    id_token: str  # kept (sealed) for the id_token_hint of single logout


_metadata_cache: dict[str, tuple[float, dict[str, Any], dict[str, Any]]] = {}


def _require_configured(sso: SsoSettings) -> tuple[str, str]:
    if not sso.issuer or not sso.client_id:
        raise SsoError(
            "single sign-on is not configured on this instance",
            remedy="set issuer and client_id under [sso] in sciti.toml (see docs/security-accounts.md)",
        )
    return sso.issuer.rstrip("/"), sso.client_id


def provider_metadata(sso: SsoSettings, *, refresh: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provider's discovery document and signing keys (JWKS), cached for a few minutes."""
    issuer, _ = _require_configured(sso)
    cached = _metadata_cache.get(issuer)
    if cached and not refresh and time.monotonic() - cached[0] < _METADATA_SECONDS:
        return cached[1], cached[2]
    timeout = sso.http_timeout_seconds
    try:
        with requests.Session() as http:
            answer = http.get(f"{issuer}/.well-known/openid-configuration", timeout=timeout)
            answer.raise_for_status()
            meta = answer.json()
            answer = http.get(meta["jwks_uri"], timeout=timeout)
            answer.raise_for_status()
            jwks = answer.json()
    except (requests.RequestException, KeyError, ValueError) as exc:
        raise SsoError(
            f"the identity provider {issuer} did not answer its discovery document or keys ({exc})",
            remedy="check the issuer URL and that the provider is reachable from the SCITI server",
        ) from None
    if str(meta.get("issuer", "")).rstrip("/") != issuer:
        raise SsoError(
            f"the provider says its issuer is {meta.get('issuer')!r}, not {issuer!r}",
            remedy="set [sso] issuer to exactly the provider's issuer URL",
        )
    _metadata_cache[issuer] = (time.monotonic(), meta, jwks)
    return meta, jwks


def _client(sso: SsoSettings, redirect_uri: str) -> OAuth2Session:
    _, client_id = _require_configured(sso)
    secret = sso.client_secret.get_secret_value() if sso.client_secret else None
    return OAuth2Session(
        client_id=client_id,
        client_secret=secret,
        scope=" ".join(sso.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",  # noqa: S106
    )


def safe_next(next_url: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//") or "\\" in next_url:
        return "/"
    return next_url[:500]


def start_login(
    session: Session,
    sso: SsoSettings,
    redirect_uri: str,
    *,
    next_url: str | None = None,
    now: datetime | None = None,
) -> SsoLogin:
    """Create state, nonce and PKCE verifier, remember them, and build the provider's login URL."""
    now = now or now_utc()
    meta, _ = provider_metadata(sso)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    with _client(sso, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    session.add(
        SsoRequest(
            state_hash=token_hash(state),
            nonce=nonce,
            code_verifier=verifier,
            next_url=safe_next(next_url),
            created_at=now,
            expires_at=now + timedelta(minutes=REQUEST_MINUTES),
        )
    )
    return SsoLogin(url=url, state=state)


def _take_request(session: Session, state: str, browser_state: str | None, now: datetime) -> SsoRequest:
    """The pending login for ``state``, deleted as it is read (a state works once; commits)."""
    row = session.get(SsoRequest, token_hash(state or ""))
    if row is None:
        raise SsoError("the sign-on answer does not match a login started here (unknown or used state)")
    session.delete(row)
    session.commit()  # burned even if this login fails below: a state never works twice
    if not browser_state or not secrets.compare_digest(browser_state, state):
        raise SsoError("the sign-on answer came back to a different browser than the one that started it")
    expires = as_utc(row.expires_at)
    if expires is None or expires <= now:
        raise SsoError(f"the sign-on took longer than {REQUEST_MINUTES} minutes")
    return row


def _id_token_claims(sso: SsoSettings, token: dict[str, Any], nonce: str) -> dict[str, Any]:
    if "id_token" not in token:
        raise SsoError("the provider answered without an id_token", remedy="include 'openid' in [sso] scopes")
    meta, jwks = provider_metadata(sso)
    algs = [a for a in meta.get("id_token_signing_alg_values_supported", ["RS256"]) if a in _SIGNING_ALGS]
    registry = JWSRegistry(algorithms=algs or ["RS256"])
    try:
        try:
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(cast(Any, jwks)), registry=registry)
        except JoseError:  # the provider may have rotated its keys: read them again once
            _, jwks = provider_metadata(sso, refresh=True)
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(cast(Any, jwks)), registry=registry)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"values": [meta["issuer"]]}},
            {"nonce": nonce, "client_id": sso.client_id, "access_token": token.get("access_token")},
        )
        claims.validate(leeway=60)
    except (JoseError, ValueError) as exc:
        raise SsoError(f"the id_token from the provider is not valid: {exc}") from None
    return dict(claims)


def _userinfo(sso: SsoSettings, redirect_uri: str, token: dict[str, Any]) -> dict[str, Any]:
    meta, _ = provider_metadata(sso)
    endpoint = meta.get("userinfo_endpoint")
    if not endpoint:
        return {}
    with _client(sso, redirect_uri) as client:
        client.token = token
        answer = client.get(endpoint, timeout=sso.http_timeout_seconds)
    return answer.json() if answer.status_code == 200 else {}


def mapped_roles(sso: SsoSettings, claims: dict[str, Any]) -> list[str]:
    """SCITI roles granted by the provider's role claim through ``role_map``."""
    value = claims.get(sso.role_claim)
    groups = [value] if isinstance(value, str) else [str(v) for v in value or []]
    return sorted({role for g in groups for role in sso.role_map.get(g, [])})


def finish_login(
    session: Session,
    sso: SsoSettings,
    redirect_uri: str,
    *,
    state: str,
    code: str,
    browser_state: str | None,
    client: str | None = None,
    now: datetime | None = None,
) -> SsoResult:
    """Check the answer, exchange the code (with the PKCE verifier), verify the id_token, provision."""
    now = now or now_utc()
    request = _take_request(session, state, browser_state, now)
    meta, _ = provider_metadata(sso)
    try:
        with _client(sso, redirect_uri) as oauth:
            token = oauth.fetch_token(
                meta["token_endpoint"],
                timeout=sso.http_timeout_seconds,
                code=code,
                code_verifier=request.code_verifier,
                grant_type="authorization_code",
            )
    except Exception as exc:  # authlib raises OAuthError or httpx errors: both mean "refused"
        raise SsoError(f"the provider refused the authorization code: {exc}") from None
    claims = _id_token_claims(sso, dict(token), request.nonce)
    if sso.role_claim not in claims or sso.username_claim not in claims:
        claims = {**_userinfo(sso, redirect_uri, dict(token)), **claims}
    user, created = _provision(session, sso, claims, now)
    user.last_login_at = now
    audit(
        session,
        actor=user.username,
        action="login",
        source=client,
        details={"method": "sso", "issuer": claims.get("iss"), "created": created, "roles": list(user.roles)},
    )
    return SsoResult(user=user, next_url=request.next_url, created=created, id_token=str(token["id_token"]))


def _provision(
    session: Session, sso: SsoSettings, claims: dict[str, Any], now: datetime
) -> tuple[User, bool]:
    issuer, subject = str(claims["iss"]), str(claims.get("sub") or "")
    username = str(claims.get(sso.username_claim) or "").strip().lower()
    if not subject or not username:
        raise SsoError(f"the provider did not send 'sub' and '{sso.username_claim}' for this user")
    if sso.username_claim == "email":
        if claims.get("email_verified") is False:
            raise SsoError(f"the provider has not verified the email address {username!r}")
        domain = username.rpartition("@")[2]
        if sso.allowed_domains and domain not in {d.lower() for d in sso.allowed_domains}:
            raise SsoError(
                f"accounts of the domain {domain!r} may not sign in here",
                remedy="ask an administrator to add the domain to [sso] allowed_domains",
            )
    roles = mapped_roles(sso, claims)
    if not roles:
        raise SsoError(
            f"none of your groups at the identity provider maps to a SCITI role ({sso.role_claim!r} claim)",
            remedy="ask an administrator to add your group to [sso] role_map",
        )
    link = session.scalar(
        select(SsoIdentity).where(SsoIdentity.issuer == issuer, SsoIdentity.subject == subject)
    )
    created = False
    if link is None:
        if find_user(session, username) is not None:
            raise SsoError(
                f"a local account named {username!r} already exists and is not linked to this identity",
                remedy="an administrator must rename or remove the local account before it can sign on",
            )
        user, _ = create_user(
            session, username, roles, display_name=str(claims.get("name", "")), service=True
        )
        link = SsoIdentity(issuer=issuer, subject=subject, user_id=user.id, created_at=now)
        session.add(link)
        created = True
    else:
        found = session.get(User, link.user_id)
        if found is None or not account_usable(found, now):
            raise SsoError("this account is disabled or expired in SCITI", remedy="ask an administrator")
        user = found
        user.roles = roles  # the provider decides an SSO user's roles, at every login
    link.last_login_at = now
    session.flush()
    return user, created


def _hint_aad(session_id: str) -> bytes:
    return b"sso-logout|" + token_hash(session_id).encode()


def seal_logout_hint(key: bytes, session_id: str, id_token: str) -> str:
    """The id_token sealed for the ``LOGOUT_COOKIE`` (encrypted, bound to this session id)."""
    sealed = encrypt(key, id_token.encode(), _hint_aad(session_id))
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def open_logout_hint(key: bytes, session_id: str, cookie: str | None) -> str | None:
    """The id_token from the cookie, or None if absent, damaged or made for another session."""
    if not cookie or len(cookie) > 8000:
        return None
    try:
        sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        return decrypt(key, sealed, _hint_aad(session_id)).decode()
    except (ValueError, MfaError):
        return None


def end_session_url(sso: SsoSettings, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """The provider's end-session URL for this logout, or None if it has none (or cannot be read).

    A provider that cannot be reached must not keep anyone logged in to SCITI: the caller ends
    the SCITI session first and falls back to its own login page on None.
    """
    if not sso.configured:
        return None
    try:
        meta, _ = provider_metadata(sso)
    except SsoError:
        return None
    endpoint = meta.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    params = {"client_id": sso.client_id or "", "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def single_logout_url(
    sso: SsoSettings | None, key: bytes, session_id: str, cookie: str | None, default_return: str
) -> str | None:
    """Where to send the browser after ending an SSO session (the provider's end-session URL).

    None for a session that did not come from single sign-on (no valid sealed id_token for this
    session id), or when the provider offers no end-session endpoint.
    """
    if sso is None or not cookie:
        return None
    id_token = open_logout_hint(key, session_id, cookie)
    if id_token is None:
        return None
    return end_session_url(sso, id_token, sso.post_logout_redirect_uri or default_return)


__all__ = [
    "LOGOUT_COOKIE",
    "STATE_COOKIE",
    "SsoLogin",
    "SsoResult",
    "SsoSettings",
    "end_session_url",
    "finish_login",
    "mapped_roles",
    "open_logout_hint",
    "seal_logout_hint",
    "single_logout_url",
    "start_login",
]
