"""Keeping the bytes of every received unit, content-addressed, so any stored row leads back to them.

The lake's object store (``sciti.lake.objects.ObjectStore``) writes atomically under the SHA-256
of the content; this module adds the one thing the runner needs first: the fingerprint of a file
before deciding whether it is a duplicate, without reading it into memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from sciti.lake.objects import ObjectStore
from sciti.settings import Settings

CHUNK = 1 << 22


def sha256_file(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.resolved_object_store)


def put_file(settings: Settings, path: Path) -> str:
    """Store the file's bytes (no-op when already stored); returns the key."""
    with path.open("rb") as fh:
        return store(settings).put(fh)


def put_bytes(settings: Settings, data: bytes) -> str:
    """Store bytes; returns the key (their sha256)."""
    return store(settings).put(data)


def object_path(settings: Settings, key: str) -> Path:
    """Local path of a stored object (the runner reads units back from here, also on recovery)."""
    return store(settings).path(key)
