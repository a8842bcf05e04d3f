"""Give back the disk that expired snapshots and abandoned writes hold.

Iceberg never deletes a file when a snapshot stops using it: compaction, upsert, delete and
replace write new files and the old ones stay for time travel. Expiring a snapshot only forgets
it. Without clean-up every upkeep pass would grow the warehouse by what it rewrote, until the disk
is full. Two clean-ups, as Iceberg's own maintenance procedures do:

- :func:`remove_expired` - after snapshots are expired, the files only they used (manifest lists,
  manifests, data and delete files). Only files an expired snapshot referred to are candidates,
  so whatever a writer adds meanwhile is never touched.
- :func:`remove_orphans` - files in the table's ``data`` and ``metadata`` folders that no snapshot
  or metadata file refers to: a writer stopped between writing and committing. Only files older
  than a grace period (days) go, so a write in progress keeps its files; so does every file in
  ``keep`` (staged files a caller will still commit, whatever their age). Local warehouses only:
  pyiceberg's FileIO cannot list an object store.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.io import FileIO
from pyiceberg.manifest import ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot

from sciti.lake.files import local_path

log = logging.getLogger("sciti.lake.reclaim")
ORPHAN_DAYS = 3.0  # Iceberg's own default for remove_orphan_files


@dataclass(frozen=True)
class Reclaimed:
    """Files removed and the bytes they held."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: Reclaimed) -> Reclaimed:
        return Reclaimed(self.files + other.files, self.bytes + other.bytes)


class Reachable:
    """What a table's snapshots use: manifest lists, manifests and data/delete files, with sizes in
    bytes (0 where unknown). Manifest lists and manifests never change once written, so each is
    read once per ``Reachable``; kept from one upkeep pass to the next (``keep_only`` drops what
    the table no longer uses), every manifest list is read once in its life, not once an hour."""

    def __init__(self, io: FileIO):
        self.io = io
        self._lists: dict[str, tuple[ManifestFile, ...]] = {}
        self._entries: dict[str, dict[str, int]] = {}

    def manifests(self, snapshots: Iterable[Snapshot]) -> dict[str, ManifestFile]:
        found: dict[str, ManifestFile] = {}
        for snap in snapshots:
            listed = self._lists.get(snap.manifest_list)
            if listed is None:
                listed = self._lists[snap.manifest_list] = tuple(snap.manifests(self.io))
            found.update((m.manifest_path, m) for m in listed)
        return found

    def files(self, manifests: Iterable[ManifestFile]) -> dict[str, int]:
        """The data and delete files the manifests hold live (a deleted entry is no use)."""
        found: dict[str, int] = {}
        for manifest in manifests:
            known = self._entries.get(manifest.manifest_path)
            if known is None:
                entries = manifest.fetch_manifest_entry(self.io, discard_deleted=True)
                known = {e.data_file.file_path: e.data_file.file_size_in_bytes for e in entries}
                self._entries[manifest.manifest_path] = known
            found.update(known)
        return found

    def of_table(self, meta: TableMetadata, metadata_location: str) -> set[str]:
        """Everything the table uses now: its snapshots' files, its current and previous metadata files."""
        manifests = self.manifests(meta.snapshots)
        found = (
            {s.manifest_list for s in meta.snapshots} | set(manifests) | set(self.files(manifests.values()))
        )
        found.add(metadata_location)
        found.update(entry.metadata_file for entry in meta.metadata_log)
        return found

    def keep_only(self, meta: TableMetadata) -> None:
        """Forget the manifest lists and manifests of snapshots the table no longer has."""
        lists = {s.manifest_list for s in meta.snapshots}
        self._lists = {path: listed for path, listed in self._lists.items() if path in lists}
        live = {m.manifest_path for listed in self._lists.values() for m in listed}
        self._entries = {path: files for path, files in self._entries.items() if path in live}


def remove_expired(table: Table, expired: Collection[Snapshot], reach: Reachable) -> Reclaimed:
    """Remove the files that only the ``expired`` snapshots (already gone from ``table``) used.

    Manifests first: most expired snapshots are appends whose manifests later snapshots still list,
    and then nothing but their manifest lists can go, with no manifest read at all."""
    if not expired:
        return Reclaimed()
    kept = reach.manifests(table.metadata.snapshots)
    dropped = {p: m for p, m in reach.manifests(expired).items() if p not in kept}
    candidates = {s.manifest_list: 0 for s in expired}
    candidates.update((p, m.manifest_length) for p, m in dropped.items())
    if dropped:
        still = reach.files(kept.values())
        candidates.update((p, n) for p, n in reach.files(dropped.values()).items() if p not in still)
    return _remove(table.io, candidates.items())


def remove_orphans(
    table: Table, reach: Reachable, *, older_than_days: float = ORPHAN_DAYS, keep: Collection[str] = ()
) -> Reclaimed:
    """Remove files under the table's ``data`` and ``metadata`` folders that nothing refers to and
    that are older than ``older_than_days``; never a file in ``keep`` (local paths or locations).

    ``keep`` must be read before this call: a staged file committed after it is then either kept
    or already referred to by the table. Paths are spelled as pyiceberg opens them
    (sciti.lake.files.local_path). If a file the current snapshot reads is not found under the
    folders (a warehouse reached through another path, a file kept elsewhere), nothing is
    removed: a file must never be taken for an orphan because its name is spelled two ways."""
    root = _path(table.location())
    if root is None:
        return Reclaimed()  # an object store: listing it is not in pyiceberg's FileIO
    listed = {
        path: (size, modified)
        for folder in ("data", "metadata")
        for path, size, modified in _files_under(Path(root) / folder)
    }
    current = table.current_snapshot()
    needed = {table.metadata_location}
    if current is not None:
        manifests = reach.manifests([current])
        needed.update([current.manifest_list, *manifests, *reach.files(manifests.values())])
    missing = [loc for loc in needed if _path(loc) not in listed]
    if missing:
        log.warning(
            "orphan files not looked for: files the table reads are not under its folder",
            extra={
                "table": str(table.name()),
                "folder": root,
                "missing": len(missing),
                "example": missing[0],
            },
        )
        return Reclaimed()
    used = {_path(p) for p in reach.of_table(table.metadata, table.metadata_location)}
    used.update(_path(p) for p in keep)
    cutoff = time.time() - older_than_days * 86_400
    orphans = [(p, size) for p, (size, modified) in listed.items() if modified < cutoff and p not in used]
    if orphans:
        log.info("orphan files found", extra={"table": str(table.name()), "files": len(orphans)})
    return _remove(table.io, orphans)


def _files_under(folder: Path) -> Iterable[tuple[str, int, float]]:
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # removed meanwhile
            yield path, st.st_size, st.st_mtime


def _path(location: str) -> str | None:
    path = local_path(location)
    return os.path.abspath(path) if path is not None else None


def _remove(io: FileIO, files: Iterable[tuple[str, int]]) -> Reclaimed:
    removed = Reclaimed()
    for location, size in files:
        if not size:
            try:
                size = len(io.new_input(location))
            except FileNotFoundError:
                continue  # already gone: nothing to give back
            except OSError:
                size = 0  # removed all the same; its size is not known
        try:
            io.delete(location)
        except FileNotFoundError:
            continue
        except OSError as exc:  # the store refused: the file stays, as it was, and is tried next time
            log.warning("lake file not removed", extra={"file": location, "error": str(exc)})
            continue
        removed += Reclaimed(1, size)
    return removed


__all__ = ["ORPHAN_DAYS", "Reachable", "Reclaimed", "remove_expired", "remove_orphans"]
