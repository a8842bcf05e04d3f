"""The secrets store as people and services use it: role checks on top of a backend, and an audit
entry for every read and change (name and version, never the value).

Who may do what:

* see metadata: anyone holding ``secrets.list`` (checked by the API guard or the CLI);
* create a secret: ``secrets.manage``; it is shared with the creator's roles unless told otherwise;
* put a new version, rotate, share, delete: ``secrets.manage`` and a role the secret is shared with
  (the ``administrator`` role manages every secret);
* read a value: the platform itself (connectors, services) or a person with a role the secret is
  shared with. The API and CLI never return values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciti.access.audit import audit
from sciti.access.errors import AccountError
from sciti.access.roles import validate_roles
from sciti.access.secrets.base import SecretBackend, SecretMeta, SecretValue
from sciti.access.secrets.errors import SecretAccessDenied, SecretError, SecretNotFound
from sciti.ops import session_scope
from sciti.settings import Settings

ADMIN_ROLE = "administrator"


@dataclass(frozen=True)
class Caller:
    """Who asks: a person (username and roles) or a part of the platform (``service=True``)."""

    name: str
    roles: tuple[str, ...] = ()
    service: bool = False

    @classmethod
    def of(cls, principal) -> Caller:
        """The caller behind an authenticated ``Principal``."""
        return cls(principal.username, tuple(principal.roles))


def open_backend(settings: Settings) -> SecretBackend:
    """The configured store: the local encrypted one, or OpenBao."""
    if settings.secrets_backend == "openbao":
        from sciti.access.secrets.openbao import OpenBaoStore

        return OpenBaoStore(settings)
    from sciti.access.secrets.local import LocalStore

    return LocalStore(settings)


class SecretsService:
    """Role-checked, audited access to one backend."""

    def __init__(self, settings: Settings, backend: SecretBackend | None = None):
        self.settings = settings
        self.backend = backend or open_backend(settings)

    # -- audit -----------------------------------------------------------------------------------
    def _audit(self, caller: Caller, action: str, name: str, source: str | None, **details) -> None:
        with session_scope(self.settings.resolved_ops_db_url) as s:
            audit(
                s,
                actor=caller.name,
                action=action,
                target=f"secret:{name}",
                source=source,
                outcome=details.pop("outcome", "ok"),
                purpose=details.pop("purpose", None),
                details={"backend": self.backend.kind, **details},
            )

    def _may_manage(self, caller: Caller, meta: SecretMeta) -> None:
        if caller.service or ADMIN_ROLE in caller.roles or set(caller.roles) & set(meta.shared_with):
            return
        raise SecretAccessDenied(
            f"secret {meta.name!r} is not shared with your roles ({', '.join(caller.roles) or 'none'})",
            remedy=f"ask an administrator or a member of {', '.join(meta.shared_with) or 'administrator'} "
            "to share it with your role",
        )

    # -- metadata --------------------------------------------------------------------------------
    def list(self) -> list[SecretMeta]:
        return self.backend.list()

    def metadata(self, name: str) -> SecretMeta:
        return self.backend.metadata(name)

    def _existing(self, name: str) -> SecretMeta | None:
        try:
            return self.backend.metadata(name)
        except SecretNotFound:
            return None

    # -- changes ---------------------------------------------------------------------------------
    def put(
        self,
        name: str,
        value: str,
        caller: Caller,
        *,
        description: str | None = None,
        shared_with: tuple[str, ...] | None = None,
        source: str | None = None,
    ) -> SecretMeta:
        """Create the secret, or store a new version of it."""
        if shared_with is not None:
            shared_with = _roles(shared_with)
        current = self._existing(name)
        if current is not None:
            self._may_manage(caller, current)
        elif shared_with is None:
            shared_with = tuple(sorted(caller.roles)) or (ADMIN_ROLE,)
        version = self.backend.put(
            name, value, actor=caller.name, description=description, shared_with=shared_with
        )
        forget(name)
        self._audit(caller, "secret.put" if current else "secret.create", name, source, version=version)
        return self.backend.metadata(name)

    def rotate(self, name: str, value: str, caller: Caller, *, source: str | None = None) -> SecretMeta:
        """A new version of an existing secret; the previous versions stay readable by number."""
        current = self.backend.metadata(name)
        self._may_manage(caller, current)
        version = self.backend.put(name, value, actor=caller.name)
        if version <= current.version:
            raise SecretError(f"secret {name!r} did not get a new version", remedy="try again")
        forget(name)
        self._audit(caller, "secret.rotate", name, source, version=version, previous=current.version)
        return self.backend.metadata(name)

    def share(
        self, name: str, roles: tuple[str, ...], caller: Caller, *, source: str | None = None
    ) -> SecretMeta:
        """Set the roles (groups) the secret is shared with."""
        roles = _roles(roles)
        if not roles:
            raise SecretError(
                f"secret {name!r} must stay shared with at least one role", remedy="name a role"
            )
        current = self.backend.metadata(name)
        self._may_manage(caller, current)
        meta = self.backend.share(name, roles, actor=caller.name)
        self._audit(
            caller, "secret.share", name, source, shared_with=list(roles), before=list(current.shared_with)
        )
        return meta

    def delete(self, name: str, caller: Caller, *, source: str | None = None) -> None:
        current = self.backend.metadata(name)
        self._may_manage(caller, current)
        self.backend.delete(name)
        forget(name)
        self._audit(caller, "secret.delete", name, source, versions=len(current.versions))

    # -- values ----------------------------------------------------------------------------------
    def read(
        self,
        name: str,
        caller: Caller,
        *,
        version: int | None = None,
        purpose: str | None = None,
        source: str | None = None,
    ) -> SecretValue:
        """The value, for the platform or a person the secret is shared with; always audited."""
        if not caller.service:
            meta = self.backend.metadata(name)
            if not set(caller.roles) & set(meta.shared_with):
                self._audit(caller, "secret.read", name, source, outcome="denied", purpose=purpose)
                raise SecretAccessDenied(
                    f"secret {name!r} is not shared with any of your roles",
                    remedy="ask an administrator to share it with your role",
                )
        found = self.backend.get(name, version)
        self._audit(caller, "secret.read", name, source, version=found.version, purpose=purpose)
        return found


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(validate_roles(roles))
    except AccountError as exc:
        raise SecretError(exc.message, remedy=exc.remedy) from None


def forget(name: str | None = None) -> None:
    """Drop cached values (all, or one name) so the next resolve asks the store."""
    from sciti.access.secrets.resolver import CACHE

    CACHE.forget(name)


__all__ = ["ADMIN_ROLE", "Caller", "SecretsService", "forget", "open_backend"]
