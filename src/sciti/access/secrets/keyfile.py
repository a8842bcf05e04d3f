"""The master key of the local secrets store: 32 random bytes in a file only its owner may read.

Made on first use with mode 0600 (folder 0700). A key file readable or writable by group or others
is refused: the store does not start rather than use a key others may have copied.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sciti.access.keys import KEY_BYTES, read_key_file
from sciti.access.secrets.errors import SecretStoreError


def load_master_key(path: Path, *, create: bool = True) -> bytes:
    """Read (or make) the master key at ``path``; refuse a file open to group or others."""
    return read_key_file(path, error=SecretStoreError, what="the secrets key file", create=create)


def key_id(key: bytes) -> str:
    """A short fingerprint naming a master key (stored beside each wrapped data key)."""
    return hashlib.sha256(b"sciti-secrets-key-id\x00" + key).hexdigest()[:16]


__all__ = ["KEY_BYTES", "key_id", "load_master_key"]
