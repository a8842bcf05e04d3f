"""Resolved bearer tokens are cached for a few seconds; revocation still takes effect.

In this process a revocation (or disabling the account) clears the cache at once; one made
elsewhere (written straight to the database here, as the CLI or another worker would) takes effect
when the entry's time is up.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from sciti.access import create_user, issue_token, revoke_token, set_disabled
from sciti.access.accounts import TOKEN_CACHE, TokenCache
from sciti.access.errors import InvalidToken
from sciti.access.guard import _from_token
from sciti.ops import ApiToken, migrate, session_scope
from sciti.settings import Settings


@pytest.fixture
def issued(settings: Settings) -> tuple[str, str, int]:
    url = settings.resolved_ops_db_url
    migrate(url)
    with session_scope(url) as session:
        user, _ = create_user(session, "clearance", ["clearance_system"], service=True)
        tok = issue_token(session, user, 60)
    TOKEN_CACHE.clear()
    return url, tok.token, tok.token_id


def _revoke_elsewhere(url: str, token_id: int) -> None:
    with session_scope(url) as session:  # not through revoke_token: this process is not told
        session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=ApiToken.created_at)
        )


def test_second_lookup_comes_from_the_cache(issued: tuple[str, str, int]) -> None:
    url, token, token_id = issued
    first = _from_token(url, token)
    assert TOKEN_CACHE.get(url, token) == first
    _revoke_elsewhere(url, token_id)
    assert _from_token(url, token) == first  # within the cache time: still the cached principal
    assert TOKEN_CACHE.get("sqlite:///other.db", token) is None  # per database


def test_revocation_elsewhere_takes_effect_when_the_entry_expires(
    issued: tuple[str, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token, token_id = issued
    monkeypatch.setattr(TOKEN_CACHE, "seconds", 0.05)
    _from_token(url, token)
    _revoke_elsewhere(url, token_id)
    time.sleep(0.1)
    with pytest.raises(InvalidToken):
        _from_token(url, token)


@pytest.mark.parametrize("how", ["revoke_token", "disable_account"])
def test_revocation_here_takes_effect_at_once(issued: tuple[str, str, int], how: str) -> None:
    url, token, token_id = issued
    _from_token(url, token)
    with session_scope(url) as session:
        if how == "revoke_token":
            assert revoke_token(session, token_id)
        else:
            set_disabled(session, "clearance")
    assert TOKEN_CACHE.get(url, token) is None
    with pytest.raises(InvalidToken):
        _from_token(url, token)


def test_an_expired_token_is_not_served_from_the_cache(issued: tuple[str, str, int]) -> None:
    url, token, _ = issued
    principal = _from_token(url, token)
    cache = TokenCache(seconds=60)
    past = principal.__class__(
        **{**principal.__dict__, "token_expires_at": principal.token_expires_at.replace(year=2000)}
    )
    cache.put(url, token, past)
    assert cache.get(url, token) is None
    cache.put(url, token, principal)
    assert cache.get(url, token) == principal
    assert TokenCache(seconds=0).get(url, token) is None
