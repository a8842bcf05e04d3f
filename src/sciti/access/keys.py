"""The instance key: 32 random bytes in ``<home>/keys/instance.key`` (0600), for AES-256-GCM.

Used to keep account secrets (TOTP seeds) encrypted at rest in the operational database, so a
copy of the database alone does not give away anyone's second factor. The key is made on first
use; a key file readable by group or others is refused, not silently used.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sciti.access.errors import MfaError
from sciti.errors import SCITIError

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = b"\x01"  # version byte in front of every sealed value


def key_path(home: Path) -> Path:
    return Path(home) / "keys" / "instance.key"


def read_key_file(path: Path, *, error: type[SCITIError], what: str, create: bool = True) -> bytes:
    """Read a 32-byte key file (making it, 0600 in a 0700 folder, when ``create``); refuse one open
    to group or others. ``what`` names the key in errors ("the instance key file")."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise error(f"{what} {path} does not exist", remedy="restore it from backup")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # O_EXCL: two processes starting at once cannot each write a different key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise error(
            f"{what} {path} is open to group or others (mode {mode:o})",
            remedy=f"run `chmod 600 {path}` and make sure only the service account owns it",
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise error(
            f"{what} {path} is damaged ({len(key)} bytes, expected {KEY_BYTES})",
            remedy="restore it from backup",
        )
    return key


def load_instance_key(home: Path) -> bytes:
    """The instance key (made on first use); MFA secrets cannot be read without it."""
    return read_key_file(key_path(home), error=MfaError, what="the instance key file")


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if sealed[:1] != _FORMAT:
        raise MfaError("an encrypted account secret has an unknown format", remedy="reset the user's MFA")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise MfaError(
            "an encrypted account secret does not decrypt with this instance's key",
            remedy="check that keys/instance.key is the instance's own key, or reset the user's MFA",
        ) from None


__all__ = ["KEY_BYTES", "decrypt", "encrypt", "key_path", "load_instance_key", "read_key_file"]
