"""The assessment flusher's own process: ``python -m sciti.risk.engine.flush_worker``.

Started by :class:`sciti.risk.engine.flusher.FlusherProcess`, which sends the settings on stdin
and closes stdin to stop it (also when the parent dies); SIGINT is ignored.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading

from sciti.logs import setup_logging
from sciti.risk.engine.flusher import Flusher
from sciti.settings import Settings

NICENESS = 10  # added to the server's: a background priority, still scheduled on an idle core


def main() -> int:
    """The child: flush every ``buffer_max_seconds`` until stdin closes, then once more."""
    # Stopping is the parent's job (it closes stdin): a SIGINT that still reaches us (a worker
    # started by hand, a signal sent to a whole group) must not skip the last pass.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Writing Parquet and committing to the catalogue comes in bursts of CPU. The answers to
    # clearance systems come first: a lower priority gives this process the cores only when the
    # server does not need them. Rows wait safely in the outbox meanwhile.
    os.nice(NICENESS)
    size = int.from_bytes(sys.stdin.buffer.read(8), "big")
    settings: Settings = pickle.loads(sys.stdin.buffer.read(size))  # noqa: S301 (from our own parent)
    setup_logging(settings)
    flusher = Flusher(settings)
    stop = threading.Event()

    def watch_parent() -> None:  # stdin closes when the server stops or dies
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    while not stop.wait(flusher.max_seconds):
        flusher.flush_logged()
    flusher.flush_logged()
    return 0


if __name__ == "__main__":
    sys.exit(main())
