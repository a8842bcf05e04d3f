"""What every secrets backend offers, and the records it returns (metadata never holds a value)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sciti.access.secrets.errors import SecretError

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,119}$")
MAX_VALUE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SecretValue:
    """A value and the version it came from. ``repr`` never shows the value (logs, tracebacks)."""

    name: str
    value: str = field(repr=False)
    version: int


@dataclass(frozen=True)
class SecretMeta:
    """What may be shown about a secret: never its value."""

    name: str
    version: int  # current version
    versions: tuple[int, ...]
    description: str
    shared_with: tuple[str, ...]
    created_at: datetime | None
    created_by: str
    updated_at: datetime | None
    updated_by: str
    backend: str


class SecretBackend(Protocol):
    """A store of named, versioned secrets. Access checks and auditing are done above it."""

    kind: str

    def get(self, name: str, version: int | None = None) -> SecretValue: ...

    def put(
        self,
        name: str,
        value: str,
        *,
        actor: str,
        description: str | None = None,
        shared_with: tuple[str, ...] | None = None,
    ) -> int:
        """Store a new version (creating the secret); returns the version number."""
        ...

    def metadata(self, name: str) -> SecretMeta: ...

    def list(self) -> list[SecretMeta]: ...

    def share(self, name: str, roles: tuple[str, ...], *, actor: str) -> SecretMeta: ...

    def delete(self, name: str) -> None:
        """Remove the secret and every version of it."""
        ...


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise SecretError(
            f"{name!r} is not a valid secret name",
            remedy="use 1-120 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def check_value(name: str, value: str) -> str:
    if not value:
        raise SecretError(f"the new value of secret {name!r} is empty", remedy="give a non-empty value")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise SecretError(
            f"the value of secret {name!r} is larger than {MAX_VALUE_BYTES} bytes",
            remedy="store a reference to a file or object instead",
        )
    return value


__all__ = ["NAME", "SecretBackend", "SecretMeta", "SecretValue", "check_name", "check_value"]
