"""Watched drop folder: files put into a connector's folder are ingested, then moved aside.

Convention (docs/transports.md):

* a sender writes ``NAME.part`` / ``NAME.tmp`` / ``.NAME`` and renames it to ``NAME`` when done
  (rename is atomic on one file system), or writes ``NAME`` then an empty ``NAME.done`` marker
  (``require_marker: true`` makes the marker mandatory);
* only files matching the connector's ``files`` pattern are taken, as ``sciti ingest`` takes from
  a folder; any other file stays where it is, untouched, and is logged once (again if it changes),
  so several connectors may share one folder and a stray file is seen, not swallowed;
* without either, a file is taken once its size and modification time have not changed for
  ``settle_seconds`` — good enough for copies, not for a writer that pauses mid-file;
* after ingest the file goes to ``processed/YYYY-MM-DD/`` (committed or duplicate); a file whose
  batch fails is retried ``attempts`` rounds, then goes to ``failed/`` with ``NAME.error.txt``
  saying why; nothing is ever deleted;
* a file whose unit another process is ingesting at that moment (a manual ``sciti ingest`` of the
  same bytes) stays where it is, without counting an attempt: the next round finds it committed
  (``duplicate``) and moves it, or finishes it if that process stopped;
* a crash between ingest and move is harmless: the file is ingested again on restart, the
  runner sees the same fingerprint and answers ``duplicate``, and the file is moved.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from sciti.acquire.transports.spec import FolderSpec, redact, resolve_drop_path
from sciti.acquire.transports.worker import Worker
from sciti.acquire.units import matches
from sciti.settings import Settings

log = logging.getLogger("sciti.transports.folder")

# Names a sender uses while still writing; never taken.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".done", ".error.txt")
PROCESSED, FAILED = "processed", "failed"


@dataclass
class Taken:
    """One file the watcher took: where it went and what the runner said."""

    name: str
    moved_to: Path
    results: list[Any] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class FolderWatcher(Worker):
    """Polls one connector's drop folder and ingests complete files through the runner."""

    def __init__(self, settings: Settings, connector: Any, spec: FolderSpec, runner: Any):
        super().__init__(f"folder-{connector.name}", spec.poll_seconds)
        self.connector = connector
        self.spec = spec
        self.runner = runner
        self.root = resolve_drop_path(settings, spec)
        self._last_seen: dict[str, tuple[int, int]] = {}
        self._attempts: dict[str, int] = {}
        # Files left in the folder because they do not match ``connector.files``: name -> (size,
        # mtime) when last logged, so each is logged once (and again when it changes).
        self.not_taken: dict[str, tuple[int, int]] = {}

    def step(self) -> None:
        self.scan_once()

    def scan_once(self) -> list[Taken]:
        """Ingest every complete file now in the folder; returns what was taken."""
        for sub in ("", PROCESSED, FAILED):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        taken = []
        present = set()
        for path in sorted(self.root.iterdir()):
            if self.stopping:
                break
            present.add(path.name)
            if self._complete(path) and (done := self._take(path)) is not None:
                taken.append(done)
        for name in set(self.not_taken) - present:  # removed or renamed by the operator
            del self.not_taken[name]
        return taken

    def _complete(self, path: Path) -> bool:
        name = path.name
        if name.startswith(".") or name.endswith(PARTIAL_SUFFIXES) or not path.is_file():
            return False
        if not matches(name, self.connector.files):
            self._not_taken(path)
            return False
        if self.spec.require_marker:
            return path.with_name(name + ".done").exists()
        if path.with_name(name + ".done").exists():
            return True
        st = path.stat()
        seen = (st.st_size, st.st_mtime_ns)
        previous = self._last_seen.get(name)
        self._last_seen[name] = seen
        settled = time.time() - st.st_mtime >= self.spec.settle_seconds
        # A file seen for the first time with an old mtime (e.g. after a restart) is complete.
        return settled and (previous is None or previous == seen)

    def _not_taken(self, path: Path) -> None:
        """Log a file the connector does not take, once per version of it; never touch it."""
        try:
            st = path.stat()
        except OSError:
            return  # gone meanwhile
        seen = (st.st_size, st.st_mtime_ns)
        if self.not_taken.get(path.name) == seen:
            return
        self.not_taken[path.name] = seen
        log.warning(
            "drop file not taken: its name does not match the connector's files pattern; it stays "
            "in the folder (rename it to match, or deliver it to its own connector's folder)",
            extra={
                "connector": self.connector.name,
                "file": path.name,
                "files": self.connector.files,
                "folder": str(self.root),
            },
        )

    def _take(self, path: Path) -> Taken | None:
        name = path.name
        self._last_seen.pop(name, None)
        try:
            results = self.runner.ingest_path(self.connector, path)
        except (DBAPIError, OSError):
            # The platform, not the file, is at fault: leave it in place for the next round.
            raise
        except Exception as exc:
            return self._failed(path, redact(f"{type(exc).__name__}: {exc}"), [])
        failed = [r for r in results if getattr(r, "status", None) == "failed"]
        if failed:
            reason = "; ".join(f"batch {r.batch_id} failed: {r.error or 'see sciti batches'}" for r in failed)
            return self._failed(path, redact(reason), results)
        busy = [r for r in results if getattr(r, "status", None) == "busy"]
        if busy:  # not this file's fault, and not a failure: try again next round
            log.info(
                "drop file is being ingested by another process; left for the next round",
                extra={"connector": self.connector.name, "file": name, "batches": [r.batch_id for r in busy]},
            )
            return None
        self._attempts.pop(name, None)
        log.info(
            "drop file ingested",
            extra={"connector": self.connector.name, "file": name, "batches": [r.batch_id for r in results]},
        )
        return Taken(name, self._move(path, PROCESSED), results)

    def _failed(self, path: Path, reason: str, results: list[Any]) -> Taken | None:
        """Retry a failing file a few rounds (a lake commit conflict passes), then set it aside."""
        tries = self._attempts.get(path.name, 0) + 1
        if tries < self.spec.attempts:
            self._attempts[path.name] = tries
            log.warning(
                "drop file failed; retrying", extra={"file": path.name, "try": tries, "reason": reason}
            )
            return None
        self._attempts.pop(path.name, None)
        return Taken(path.name, self._move(path, FAILED, reason), results, error=reason)

    def _move(self, path: Path, where: str, reason: str | None = None) -> Path:
        folder = self.root / where
        if where == PROCESSED:
            folder = folder / datetime.now(UTC).strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if target.exists():  # the same name dropped twice: keep both
            stamp = datetime.now(UTC).strftime("%H%M%S%f")
            target = folder / f"{path.stem}.{stamp}{path.suffix}"
        os.replace(path, target)
        marker = path.with_name(path.name + ".done")
        if marker.exists():
            os.replace(marker, target.with_name(target.name + ".done"))
        if reason:
            target.with_name(target.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
            log.warning(
                "drop file failed",
                extra={"connector": self.connector.name, "file": path.name, "reason": reason},
            )
        return target
