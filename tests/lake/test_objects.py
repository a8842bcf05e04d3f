"""Content-addressed object store and its catalogue table raw.objects."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from sciti.lake import OBJECTS_TABLE, Lake, LakeError, ObjectStore, query, record_object


class Trickle(io.RawIOBase):
    """A stream that hands out a large payload in small reads and remembers the biggest read."""

    def __init__(self, size: int):
        self.left = size
        self.biggest = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        self.biggest = max(self.biggest, len(buffer))
        buffer[:n] = b"x" * n
        self.left -= n
        return n


@pytest.mark.parametrize(
    "make",
    [lambda: b"declaration 1", lambda: io.BytesIO(b"declaration 1"), lambda: bytearray(b"declaration 1")],
    ids=["bytes", "stream", "bytearray"],
)
def test_put_returns_sha256_and_is_idempotent(tmp_path: Path, make) -> None:
    store = ObjectStore(tmp_path / "objects")
    key = store.put(make())
    assert key == hashlib.sha256(b"declaration 1").hexdigest()
    assert store.put(make()) == key
    assert store.exists(key) and store.size(key) == 13
    with store.open(key) as f:
        assert f.read() == b"declaration 1"
    assert store.path(key).relative_to(store.root).parts == (key[:2], key[2:4], key)
    assert list((store.root / "tmp").iterdir()) == [], "no temporary files left behind"


def test_large_stream_is_never_read_whole(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    size = 20 * 1024 * 1024
    source = Trickle(size)
    key = store.put(io.BufferedReader(source, buffer_size=64 * 1024))
    assert store.size(key) == size
    assert key == hashlib.sha256(b"x" * size).hexdigest()
    assert source.biggest <= 2 * 1024 * 1024


def test_failed_put_leaves_nothing(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            raise OSError("connection reset")

    store = ObjectStore(tmp_path)
    with pytest.raises(OSError):
        store.put(Broken())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("key", ["../../etc/passwd", "ABC", "g" * 64, ""])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(LakeError, match="not an object key"):
        store.open(key)


def test_missing_object(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="not in the store"):
        ObjectStore(tmp_path).open("0" * 64)


def test_record_object_once_with_first_batch(any_lake: Lake, tmp_path: Path, shared_data: Path) -> None:
    store = ObjectStore(tmp_path / "objects")
    sample = shared_data / "kcs" / "valid.csv"
    with sample.open("rb") as f:
        key = store.put(f)
    assert record_object(
        any_lake, store, key, media_type="text/csv", original_name="valid.csv", batch_id="b1"
    )
    assert not record_object(
        any_lake, store, key, media_type="text/csv", original_name="copy.csv", batch_id="b2"
    )
    rows = query(any_lake, f"SELECT * FROM {OBJECTS_TABLE}").to_pylist()
    assert len(rows) == 1
    assert rows[0]["key"] == key and rows[0]["size"] == sample.stat().st_size
    assert (rows[0]["original_name"], rows[0]["first_batch_id"]) == ("valid.csv", "b1")
    with pytest.raises(LakeError, match="not in the store"):
        record_object(any_lake, store, "1" * 64)
