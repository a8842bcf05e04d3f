"""A background thread that repeats one step until stopped, and never dies of one failure.

Every long-lived transport (folder poller, SQL extractor, MQTT flusher) is a ``Worker``: the step
does one round of work; an exception is logged (with secrets redacted) and the worker waits and
tries again with a growing back-off, because a source being down for a while is normal.
"""

from __future__ import annotations

import logging
import threading

from sciti.acquire.transports.spec import redact

log = logging.getLogger("sciti.transports")


class Worker(threading.Thread):
    """Runs ``step()`` every ``interval`` seconds until ``stop()``."""

    def __init__(self, name: str, interval: float):
        super().__init__(name=f"sciti-{name}", daemon=True)
        self.interval = interval
        self.failures = 0
        self.last_error: str | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()

    def step(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def close(self) -> None:
        """Release resources after the loop ends (connections, clients)."""

    def wake(self) -> None:
        """Run the next step now instead of at the end of the interval."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the loop to end after its current step, without waiting."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """End the loop and wait (at most ``timeout`` seconds) for the thread to finish."""
        self.request_stop()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.step()
                    self.failures, self.last_error = 0, None
                except Exception as exc:  # one bad round must not end a long-lived transport
                    self.failures += 1
                    self.last_error = redact(str(exc))
                    log.error(
                        "transport step failed",
                        extra={"worker": self.name, "error": self.last_error, "failures": self.failures},
                    )
                delay = (
                    self.interval
                    if not self.failures
                    else min(60.0, self.interval * 2 ** min(self.failures, 6))
                )
                self._wake.wait(delay)
                self._wake.clear()
        finally:
            self.close()
