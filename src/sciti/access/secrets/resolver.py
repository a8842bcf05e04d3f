"""Resolving ``secret:NAME`` references at use time, with a short cache.

Connectors and services name their credentials (``dsn: secret:kcs-db``); the value is fetched from
the store when needed and kept for ``secrets_cache_seconds`` (30 s by default), so a rotated secret
is picked up without a restart and the store is not asked on every round. Each fetch from the
store is audited as ``secret.read`` under the asking component's name; a cached reuse is not a read.

For development, a name missing from the store may come from the environment variable
``SCITI_SECRET_<NAME>`` (upper case, other characters as ``_``); such a read is audited too.
"""

from __future__ import annotations

import os
import re
import threading
import time

from sciti.access.secrets.base import SecretValue
from sciti.access.secrets.errors import SecretNotFound
from sciti.settings import Settings

PREFIX = "secret:"


def env_var(name: str) -> str:
    return "SCITI_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def reference(text: str | None) -> str | None:
    """The secret name in ``secret:NAME``, or None when ``text`` is not a reference."""
    if isinstance(text, str) and text.startswith(PREFIX):
        return text[len(PREFIX) :].strip()
    return None


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[float, SecretValue]] = {}

    def get(self, key: tuple[str, str]) -> SecretValue | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                return None
            return item[1]

    def put(self, key: tuple[str, str], value: SecretValue, ttl: float) -> None:
        if ttl > 0:
            with self._lock:
                self._items[key] = (time.monotonic() + ttl, value)

    def forget(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._items.clear()
            else:
                for key in [k for k in self._items if k[1] == name]:
                    del self._items[key]


CACHE = _Cache()


def _store_key(settings: Settings) -> str:
    if settings.secrets_backend == "openbao":
        return f"openbao:{settings.openbao_url}/{settings.openbao_mount}/{settings.openbao_prefix}"
    return f"local:{settings.resolved_ops_db_url}"


def resolve_value(settings: Settings, name: str, *, actor: str) -> SecretValue:
    """The current value of secret ``name`` for platform component ``actor`` (e.g. ``connector:kcs``)."""
    from sciti.access.secrets.service import Caller, SecretsService

    key = (_store_key(settings), name)
    cached = CACHE.get(key)
    if cached is not None:
        return cached
    service = SecretsService(settings)
    caller = Caller(actor, service=True)
    try:
        found = service.read(name, caller, source="resolver")
    except SecretNotFound:
        value = os.environ.get(env_var(name))
        if not value:
            raise SecretNotFound(
                name,
                remedy=f"store it with `sciti secrets put {name}` (value on stdin); for development only, "
                f"the environment variable {env_var(name)} is also read",
            ) from None
        found = SecretValue(name, value, 0)
        service._audit(caller, "secret.read", name, "resolver", version=0, origin="environment")
    CACHE.put(key, found, settings.secrets_cache_seconds)
    return found


def resolve(settings: Settings, name: str, *, actor: str) -> str:
    """:func:`resolve_value`, the value only."""
    return resolve_value(settings, name, actor=actor).value


__all__ = ["CACHE", "PREFIX", "env_var", "reference", "resolve", "resolve_value"]
