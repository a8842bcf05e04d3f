"""A real OpenID Connect provider on loopback, built with authlib's authorization server.

It serves discovery, JWKS, authorize (code flow, PKCE required, consent auto-given for the one
configured user), token, userinfo and end-session (RP-initiated logout: the id_token_hint is
verified, the return address must be registered) over real HTTP in a thread. Tests point SCITI's SSO client at
it and drive a browser's part by following the redirects themselves.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

CLIENT_ID = "sciti-test"
CLIENT_SECRET = "loopback-client-secret"  # noqa: S105 (a test value)


@dataclass
class Person:
    sub: str
    email: str
    name: str = "Test Person"
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in scope.split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None

    def is_expired(self):
        return time.time() - self.auth_time > 300


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]):
        self._datalist = defaultdict(list, values)

    @property
    def data(self):
        return {k: v[0] for k, v in self._datalist.items()}

    @property
    def datalist(self):
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict[str, str], values: dict[str, list[str]], form):
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _Payload(values)
        self._form = form

    @property
    def args(self):
        return dict(parse_qsl(urlsplit(self.uri).query))

    @property
    def form(self):
        return self._form


class Provider:
    """Start with ``Provider().start()``; ``issuer`` is its URL; ``stop()`` when done."""

    def __init__(self, person: Person | None = None, *, sign_with_other_key: bool = False):
        self.person = person or Person("u-1001", "ada@customs.example", "Ada Lovelace", ["risk-analysts"])
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        # A key the JWKS does not publish: id_tokens signed with it must be refused.
        self.signing_key = (
            RSAKey.generate_key(2048, parameters={"kid": "k1"}) if sign_with_other_key else self.key
        )
        self.redirect_uris: list[str] = []
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Person] = {}
        self.token_requests: list[dict[str, str]] = []
        self.nonce_override: str | None = None
        self.end_session = True  # advertise end_session_endpoint (RP-initiated logout)
        self.post_logout_redirect_uris: list[str] = []
        self.signed_in: set[str] = set()  # subjects with a session at the provider
        self.logouts: list[dict[str, str]] = []  # accepted end-session requests
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.auth = self._authorization_server()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Provider:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- authlib server ----------------------------------------------------------------------
    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id):
                if client_id == CLIENT_ID:
                    return Client(CLIENT_ID, CLIENT_SECRET, provider.redirect_uris)
                return None

            def save_token(self, token, request):
                provider.tokens[token["access_token"]] = request.user

            def create_oauth2_request(self, request):
                return request

            def handle_response(self, status, body, headers):
                return status, body, headers

            def send_signal(self, name, *args, **kwargs):
                return None

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                provider.codes[code] = Code(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope or data.get("scope", ""),
                    user=request.user,
                    nonce=provider.nonce_override or data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code, client):
                found = provider.codes.get(code)
                if found and found.client_id == client.get_client_id() and not found.is_expired():
                    return found
                return None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class OpenID(OpenIDCode):
            def resolve_client_private_key(self, client):
                return provider.signing_key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "k1"}

            def exists_nonce(self, nonce, request):
                return False

            def generate_user_info(self, user, scope):
                return UserInfo(
                    sub=user.sub,
                    email=user.email,
                    email_verified=user.email_verified,
                    name=user.name,
                    groups=user.groups,
                )

        server = Server(scopes_supported=["openid", "email", "profile"])
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(24))
        )
        server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
        return server

    # --- HTTP --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        meta = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
        if self.end_session:
            meta["end_session_endpoint"] = f"{self.issuer}/logout"
        return meta

    def end_session_request(self, query: dict[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        """RP-initiated logout: check the id_token_hint (ours, for this client) and the return address."""
        try:
            hint = jwt.decode(query.get("id_token_hint", ""), self.key)
        except (JoseError, ValueError) as exc:
            return 400, {"error": "invalid_request", "error_description": f"bad id_token_hint: {exc}"}, []
        claims = hint.claims
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self.issuer or CLIENT_ID not in audiences:
            return (
                400,
                {"error": "invalid_request", "error_description": "id_token_hint not for this client"},
                [],
            )
        if query.get("client_id", CLIENT_ID) != CLIENT_ID:
            return 400, {"error": "invalid_request", "error_description": "client_id mismatch"}, []
        target = query.get("post_logout_redirect_uri", "")
        if target not in self.post_logout_redirect_uris:
            return 400, {"error": "invalid_request", "error_description": "unregistered return address"}, []
        self.signed_in.discard(str(claims.get("sub")))
        self.logouts.append({"sub": str(claims.get("sub")), "post_logout_redirect_uri": target})
        return 302, b"", [("Location", target)]

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                return None

            def _send(self, status: int, body: Any, headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                sent = {k.lower() for k, _ in headers}
                for k, v in headers:
                    self.send_header(k, v)
                if "content-type" not in sent:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _request(self, form: dict[str, list[str]] | None = None) -> _Request:
                query: dict[str, list[str]] = defaultdict(list)
                for k, v in parse_qsl(urlsplit(self.path).query):
                    query[k].append(v)
                values = dict(query)
                for k, vs in (form or {}).items():
                    values.setdefault(k, []).extend(vs)
                flat_form = {k: v[0] for k, v in (form or {}).items()}
                return _Request(
                    self.command, provider.issuer + self.path, dict(self.headers), values, flat_form
                )

            def do_GET(self):
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    return self._send(200, provider.metadata())
                if path == "/jwks":
                    return self._send(200, {"keys": [provider.key.as_dict(private=False)]})
                if path == "/authorize":
                    status, body, headers = provider.auth.create_authorization_response(
                        self._request(), grant_user=provider.person
                    )
                    if status == 302:
                        provider.signed_in.add(provider.person.sub)
                    return self._send(status, body or {}, headers)
                if path == "/logout" and provider.end_session:
                    status, body, headers = provider.end_session_request(
                        dict(parse_qsl(urlsplit(self.path).query))
                    )
                    return self._send(status, body, headers)
                if path == "/userinfo":
                    auth = self.headers.get("Authorization", "")
                    person = provider.tokens.get(auth.removeprefix("Bearer "))
                    if person is None:
                        return self._send(401, {"error": "invalid_token"})
                    return self._send(
                        200, {"sub": person.sub, "email": person.email, "groups": person.groups}
                    )
                return self._send(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form: dict[str, list[str]] = defaultdict(list)
                for k, v in parse_qsl(self.rfile.read(length).decode()):
                    form[k].append(v)
                if urlsplit(self.path).path == "/token":
                    provider.token_requests.append({k: v[0] for k, v in form.items()})
                    status, body, headers = provider.auth.create_token_response(self._request(dict(form)))
                    return self._send(status, body, headers)
                return self._send(404, {"error": "not_found"})

        return Handler
