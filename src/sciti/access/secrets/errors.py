"""Errors of the secrets store. Messages name the secret and never contain a value."""

from __future__ import annotations

from sciti.access.errors import AccessError


class SecretError(AccessError):
    """A request the store cannot do as asked: bad name, empty value, unknown role."""

    code = "secret_error"
    http_status = 400


class SecretNotFound(SecretError):
    code = "secret_not_found"
    http_status = 404

    def __init__(self, name: str, **kw):
        kw.setdefault(
            "remedy", f"create it with `sciti secrets put {name}` (value on stdin), or check the name"
        )
        super().__init__(f"no secret named {name!r}", **kw)
        self.name = name


class SecretAccessDenied(SecretError):
    """The caller's roles are not among the groups the secret is shared with."""

    code = "secret_forbidden"
    http_status = 403


class SecretStoreError(SecretError):
    """The store itself cannot be used: key file missing or too open, OpenBao unreachable or refusing."""

    code = "secret_store_unavailable"
    http_status = 503


__all__ = ["SecretAccessDenied", "SecretError", "SecretNotFound", "SecretStoreError"]
