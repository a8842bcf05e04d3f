"""The default store: secrets encrypted in the operational database (AES-256-GCM envelope).

Each version gets its own random 256-bit data key. The value is sealed with the data key; the data
key is sealed ("wrapped") with the master key from the key file. Both seals bind the secret's name
and version as associated data, so a sealed row moved to another name or version does not open.
A copy of the database alone gives nothing away; the key file is kept apart (0600, backed up
separately).
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select

from sciti.access.secrets.base import SecretMeta, SecretValue, check_name, check_value
from sciti.access.secrets.errors import SecretNotFound, SecretStoreError
from sciti.access.secrets.keyfile import key_id, load_master_key
from sciti.ops import session_scope
from sciti.ops.privacy_tables import SecretVersion, StoredSecret
from sciti.settings import Settings

_FORMAT = b"\x01"
_NONCE = 12


def _aad(name: str, version: int, part: str) -> bytes:
    return f"sciti-secret\x1f{part}\x1f{name}\x1f{version}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return _FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    if sealed[:1] != _FORMAT:
        raise SecretStoreError(f"{what} has an unknown format", remedy="put a new version of the secret")
    try:
        return AESGCM(key).decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], aad)
    except InvalidTag:
        raise SecretStoreError(
            f"{what} does not decrypt with this instance's secrets key",
            remedy="check that the secrets key file is this instance's own (restore it from backup)",
        ) from None


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


class LocalStore:
    """Secrets in the ops database, sealed with the master key in ``settings.resolved_secrets_key_file``."""

    kind = "local"

    def __init__(self, settings: Settings):
        self.url = settings.resolved_ops_db_url
        self.key = load_master_key(settings.resolved_secrets_key_file)  # refuses a key file open to others
        self.key_id = key_id(self.key)

    def get(self, name: str, version: int | None = None) -> SecretValue:
        with session_scope(self.url) as s:
            head = s.get(StoredSecret, check_name(name))
            if head is None:
                raise SecretNotFound(name)
            wanted = version or head.current_version
            row = s.get(SecretVersion, (name, wanted))
            if row is None:
                raise SecretNotFound(name, remedy=f"secret {name!r} has no version {wanted}")
            if row.key_id != self.key_id:
                raise SecretStoreError(
                    f"version {wanted} of secret {name!r} was sealed with another secrets key ({row.key_id})",
                    remedy="use the key file this instance was set up with; if `sciti secrets rekey` was "
                    "interrupted, run it again",
                )
            data_key = _open(self.key, row.wrapped_key, _aad(name, wanted, "key"), f"secret {name!r}")
            value = _open(data_key, row.sealed_value, _aad(name, wanted, "value"), f"secret {name!r}")
            return SecretValue(name, value.decode("utf-8"), wanted)

    def put(
        self,
        name: str,
        value: str,
        *,
        actor: str,
        description: str | None = None,
        shared_with: tuple[str, ...] | None = None,
    ) -> int:
        check_name(name)
        check_value(name, value)
        now = datetime.now(UTC)
        with session_scope(self.url) as s:
            head = s.scalars(select(StoredSecret).where(StoredSecret.name == name).with_for_update()).first()
            if head is None:
                head = StoredSecret(
                    name=name,
                    description=description or "",
                    shared_with=list(shared_with or ()),
                    current_version=0,
                    created_at=now,
                    created_by=actor,
                )
                s.add(head)
                s.flush()  # the parent row first: secret_versions references it
            version = head.current_version + 1
            data_key = secrets.token_bytes(32)
            s.add(
                SecretVersion(
                    name=name,
                    version=version,
                    key_id=self.key_id,
                    wrapped_key=_seal(self.key, data_key, _aad(name, version, "key")),
                    sealed_value=_seal(data_key, value.encode("utf-8"), _aad(name, version, "value")),
                    created_at=now,
                    created_by=actor,
                )
            )
            head.current_version = version
            head.updated_at, head.updated_by = now, actor
            if description is not None:
                head.description = description
            if shared_with is not None:
                head.shared_with = list(shared_with)
            return version

    def _meta(self, s, head: StoredSecret) -> SecretMeta:
        versions = tuple(
            s.scalars(
                select(SecretVersion.version)
                .where(SecretVersion.name == head.name)
                .order_by(SecretVersion.version)
            )
        )
        return SecretMeta(
            name=head.name,
            version=head.current_version,
            versions=versions,
            description=head.description,
            shared_with=tuple(head.shared_with or ()),
            created_at=_utc(head.created_at),
            created_by=head.created_by,
            updated_at=_utc(head.updated_at),
            updated_by=head.updated_by,
            backend=self.kind,
        )

    def metadata(self, name: str) -> SecretMeta:
        with session_scope(self.url) as s:
            head = s.get(StoredSecret, check_name(name))
            if head is None:
                raise SecretNotFound(name)
            return self._meta(s, head)

    def list(self) -> list[SecretMeta]:
        with session_scope(self.url) as s:
            return [self._meta(s, h) for h in s.scalars(select(StoredSecret).order_by(StoredSecret.name))]

    def share(self, name: str, roles: tuple[str, ...], *, actor: str) -> SecretMeta:
        with session_scope(self.url) as s:
            head = s.get(StoredSecret, check_name(name))
            if head is None:
                raise SecretNotFound(name)
            head.shared_with = sorted(set(roles))
            head.updated_at, head.updated_by = datetime.now(UTC), actor
            s.flush()
            return self._meta(s, head)

    def rekey(self, new_key: bytes) -> int:
        """Re-wrap every data key with ``new_key`` in one transaction (values are not touched).

        Versions already wrapped by ``new_key`` are skipped, so an interrupted rekey can be re-run.
        """
        new_id, count = key_id(new_key), 0
        with session_scope(self.url) as s:
            for row in s.scalars(select(SecretVersion).with_for_update()):
                if row.key_id == new_id:
                    continue
                if row.key_id != self.key_id:
                    raise SecretStoreError(
                        f"version {row.version} of secret {row.name!r} has an unknown key ({row.key_id})",
                        remedy="restore the key file this instance was set up with before rotating it",
                    )
                aad = _aad(row.name, row.version, "key")
                data_key = _open(self.key, row.wrapped_key, aad, f"secret {row.name!r}")
                row.wrapped_key, row.key_id = _seal(new_key, data_key, aad), new_id
                count += 1
        return count

    def delete(self, name: str) -> None:
        with session_scope(self.url) as s:
            head = s.get(StoredSecret, check_name(name))
            if head is None:
                raise SecretNotFound(name)
            s.execute(delete(SecretVersion).where(SecretVersion.name == name))
            s.delete(head)


def rotate_master_key(settings: Settings) -> tuple[str, str, int]:
    """Replace the local master key: make a new one, re-wrap every data key, then swap the files.

    Returns (old key id, new key id, versions re-wrapped). Safe to re-run after an interruption:
    the new key waits in ``<key file>.new`` until the swap.
    """
    path = settings.resolved_secrets_key_file
    pending = path.with_name(path.name + ".new")
    store = LocalStore(settings)
    new_key = load_master_key(pending)  # made 0600 now, or the one an interrupted run left
    count = store.rekey(new_key)
    os.replace(pending, path)  # atomic: readers see the old key file or the new one
    return store.key_id, key_id(new_key), count


__all__ = ["LocalStore", "rotate_master_key"]
