"""Content-addressed object store for original files and documents, with a catalogue in the lake.

An object's key is the SHA-256 of its bytes, so storing the same file twice stores it once and a
key proves what it names. Objects live at ``<root>/<k[:2]>/<k[2:4]>/<key>``; a write goes to a
temporary file in the same store, is flushed to disk, then renamed into place, so a crash never
leaves a partial object under a key. Large files are streamed in chunks, never held in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from sciti.lake.catalog import Lake
from sciti.lake.errors import LakeError

OBJECTS_TABLE = "raw.objects"
OBJECTS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("media_type", pa.string()),
        pa.field("original_name", pa.string()),
        pa.field("first_batch_id", pa.string()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC")),
    ]
)
_CHUNK = 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{64}$")


class ObjectStore:
    """Objects on a local folder, addressed by the SHA-256 hex of their content."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def put(self, data: bytes | BinaryIO) -> str:
        """Store bytes or a readable binary stream; returns the key. Idempotent."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    digest.update(data)
                    out.write(data)
                else:
                    while chunk := data.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            key = digest.hexdigest()
            final = self.path(key)
            if final.exists():
                tmp.unlink()
                return key
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # atomic; a concurrent put of the same bytes writes the same content
            _fsync_dir(final.parent)
            return key
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def path(self, key: str) -> Path:
        """Where the object with ``key`` is (or would be) stored."""
        if not _KEY.match(key):
            raise LakeError(
                f"{key!r} is not an object key", remedy="use the 64-character SHA-256 hex key put() returned"
            )
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        """The object's bytes as a binary stream (the caller closes it)."""
        path = self.path(key)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise LakeError(
                f"object {key} is not in the store at {self.root}", remedy="check the key"
            ) from None

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete(self, key: str) -> int:
        """Remove the object for good (privacy retention); returns the bytes freed, 0 if it was not there.

        The unlink is made durable (the folder is fsync'd). Key folders stay, even when empty: a
        concurrent ``put`` may be about to rename into one. A later ``put`` of the same bytes
        stores them again under the same key.
        """
        path = self.path(key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        _fsync_dir(path.parent)
        return size


def record_object(
    lake: Lake,
    store: ObjectStore,
    key: str,
    *,
    media_type: str | None = None,
    original_name: str | None = None,
    batch_id: str | None = None,
) -> bool:
    """Note a stored object in ``raw.objects`` (once: the first batch that saw it is kept).

    Returns True when this call added the entry, False when the object was already known.
    """
    if not store.exists(key):
        raise LakeError(f"object {key} is not in the store", remedy="put() the bytes before recording them")
    lake.ensure_table(OBJECTS_TABLE, OBJECTS_SCHEMA)
    row = pa.Table.from_pylist(
        [
            {
                "key": key,
                "size": store.size(key),
                "media_type": media_type,
                "original_name": original_name,
                "first_batch_id": batch_id,
                "recorded_at": datetime.now(UTC),
            }
        ],
        schema=OBJECTS_SCHEMA,
    )
    result = lake.upsert(OBJECTS_TABLE, row, key="key", batch_id=batch_id, update=False)
    return result.inserted == 1


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
