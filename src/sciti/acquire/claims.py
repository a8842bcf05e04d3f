"""Who works on a batch: a claim with a lease in the batch's row (decision 0094).

A runner claims a batch before it derives anything; a thread renews the claim while it works, and
the claim is checked before each lake append, so of two processes given one unit only one writes
it. A claim names its owner as ``machine:pid:token``; a claim whose owner ran on this machine and
is gone is free at once, any other only when its time has run out.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, update

from sciti.acquire.errors import UnitBusy
from sciti.ops import Batch, session_scope, utcnow

log = logging.getLogger("sciti.acquire.runner")

# A claim on a batch lasts CLAIM_SECONDS unless renewed; its owner renews it every RENEW_SECONDS
# while it works. A process on another machine that dies holds its batches this long at most; one
# on this machine is seen to be gone at once (its process id no longer runs).
CLAIM_SECONDS = 120.0
RENEW_SECONDS = 20.0


class Lease(threading.Thread):
    """Keeps this runner's claim on a batch alive while it works, and says when it was lost.

    A thread renews the claim every RENEW_SECONDS; ``hold()``, called before each lake append,
    renews it at once and raises ``UnitBusy`` if another process has taken the batch (this one's
    time ran out, e.g. its machine was paused longer than CLAIM_SECONDS). A runner that lost its
    batch so stops at its next append and never commits it."""

    def __init__(self, db: str, batch_id: str, owner: str):
        super().__init__(name=f"sciti-claim-{batch_id[:12]}", daemon=True)
        self.db, self.batch_id, self.owner = db, batch_id, owner
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(RENEW_SECONDS):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - the database may answer at the next renewal
                log.warning("batch claim not renewed", extra={"batch_id": self.batch_id, "error": str(exc)})

    def renew(self) -> bool:
        with session_scope(self.db) as s:
            done = s.execute(
                update(Batch)
                .where(Batch.id == self.batch_id, Batch.claimed_by == self.owner)
                .values(claimed_until=claim_end())
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], done).rowcount != 1:
                self.lost = True
        return not self.lost

    def hold(self) -> None:
        if self.lost or not self.renew():
            raise self.lost_error()

    def lost_error(self) -> UnitBusy:
        self.lost = True
        return UnitBusy(
            f"batch {self.batch_id} was taken over by another process before this one committed it; "
            "nothing more was written by this one",
            remedy="the other process finishes it; see `sciti batches`",
        )

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


def claim_end() -> datetime:
    return utcnow() + timedelta(seconds=CLAIM_SECONDS)


@functools.cache
def this_machine() -> str:
    """This machine as claims name it. The host name for people; the boot id and the process-id
    namespace so that two machines (or containers) whose names are alike are never taken for one
    another: whether a process id still runs is known only where it was given out."""
    parts = [socket.gethostname()[:100]]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append("".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()))  # pid:[4026531836]
    except OSError:  # not Linux: the host name alone
        pass
    return "/".join(parts)


def owner_gone(owner: str) -> bool:
    """Whether a claim's owner was a process on this machine that no longer runs."""
    if owner.count(":") < 2:
        return False
    machine, pid, _ = owner.rsplit(":", 2)
    return machine == this_machine() and pid.isdigit() and not alive(int(pid))


def holder(owner: str | None) -> str:
    """A claim's owner as a person reads it: ``process 4711 on host``."""
    if not owner or owner.count(":") < 2:
        return "another process"
    machine, pid, _ = owner.rsplit(":", 2)
    return f"process {pid} on {machine.split('/', 1)[0]}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "CLAIM_SECONDS",
    "RENEW_SECONDS",
    "Lease",
    "alive",
    "claim_end",
    "holder",
    "owner_gone",
    "this_machine",
]
