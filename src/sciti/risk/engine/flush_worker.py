"""The assessment flusher's own process: ``python -m sciti.risk.engine.flush_worker``.

Started by :class:`sciti.risk.engine.flusher.FlusherProcess` (see :mod:`sciti.child`): the
settings arrive on stdin, and stdin closing (the server stopped or died) ends it after a last pass.
"""

from __future__ import annotations

import sys

from sciti import child
from sciti.logs import setup_logging
from sciti.risk.engine.flusher import Flusher
from sciti.settings import Settings

NICENESS = 10  # added to the server's: a background priority, still scheduled on an idle core


def main() -> int:
    """The child: flush every ``buffer_max_seconds`` until stdin closes, then once more."""
    # Writing Parquet and committing to the catalogue comes in bursts of CPU: at a lower priority
    # this process gets the cores only when the server does not need them. Rows wait safely in the
    # outbox meanwhile.
    settings, stopped = child.receive(niceness=NICENESS)
    assert isinstance(settings, Settings)
    setup_logging(settings)
    flusher = Flusher(settings, report=child.send)  # counted on the server's /metrics
    while not stopped.wait(flusher.max_seconds):
        flusher.flush_logged()
    flusher.flush_logged()
    return 0


if __name__ == "__main__":
    sys.exit(main())
