"""Login CSRF: a signed double-submit token for login forms, before any session exists.

Without it a cross-site page could post *its owner's* credentials to our login form and leave the
victim's browser logged in to the attacker's account (anything the victim then types -- a query, a
note, a case -- lands where the attacker reads it). There is no session to hold a synchroniser
token yet, so the login page sets a cookie holding a random value signed with a key derived from
the instance key, and embeds the same value in the form. The login POST must send both, equal,
with a valid signature no older than ``MAX_AGE_SECONDS``. A cross-site page can neither read the
cookie nor guess the value; the signature stops a value planted by a sibling sub-domain that the
server never issued. Decision 0057.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sciti.access.accounts import now_utc
from sciti.access.errors import CsrfFailed

LOGIN_CSRF_COOKIE = "sciti_login_csrf"
LOGIN_CSRF_FIELD = "csrf_token"  # the form field (the same name the session CSRF token uses)
MAX_AGE_SECONDS = 2 * 3600  # a login page left open longer must be reloaded
_LABEL = b"sciti login csrf v1"  # key separation: this key signs nothing else


def _mac(key: bytes, issued: int, nonce: str) -> str:
    derived = hmac.new(key, _LABEL, hashlib.sha256).digest()
    digest = hmac.new(derived, f"{issued}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue_login_csrf(key: bytes, *, now: datetime | None = None) -> str:
    """A fresh token: ``<issued unix time>.<random>.<HMAC>``, for the cookie and the form alike."""
    issued = int((now or now_utc()).timestamp())
    nonce = secrets.token_urlsafe(24)
    return f"{issued}.{nonce}.{_mac(key, issued, nonce)}"


def check_login_csrf(
    key: bytes, cookie: str | None, submitted: str | None, *, now: datetime | None = None
) -> None:
    """Refuse (403 ``csrf_failed``) unless cookie and form carry the same, valid, recent token."""
    refused = CsrfFailed(
        "the login form lacks a valid anti-forgery token (or it expired)",
        remedy="reload the login page and submit it again; API clients log in with a JSON body "
        "sent as application/json, or send the 'sciti_login_csrf' cookie and its value as 'csrf_token'",
    )
    if not cookie or not submitted or len(cookie) > 200 or not hmac.compare_digest(cookie, submitted):
        raise refused
    issued_text, _, rest = cookie.partition(".")
    nonce, _, mac = rest.partition(".")
    if not issued_text.isdigit() or not nonce or not mac:
        raise refused
    issued = int(issued_text)
    if not hmac.compare_digest(mac, _mac(key, issued, nonce)):
        raise refused
    age = int((now or now_utc()).timestamp()) - issued
    if age < -60 or age > MAX_AGE_SECONDS:  # a minute of clock skew between workers is tolerated
        raise refused


__all__ = ["LOGIN_CSRF_COOKIE", "LOGIN_CSRF_FIELD", "MAX_AGE_SECONDS", "check_login_csrf", "issue_login_csrf"]
