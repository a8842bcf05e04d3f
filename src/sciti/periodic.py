"""Server jobs that run every few hours on a thread of their own (lake upkeep, retention)."""

from __future__ import annotations

import logging
import threading


class Periodic(threading.Thread):
    """Runs ``job`` every ``period()`` seconds, the first time ``first_delay`` s after start.

    A failed run is logged and tried again at the next period: it never ends the server. ``stop``
    lets the run in progress reach a point where ``halt`` is checked (a job given long work checks
    it between steps), then ends the thread.
    """

    def __init__(self, name: str, *, first_delay: float, what: str, log: logging.Logger):
        super().__init__(name=name, daemon=True)
        self.first_delay, self.what, self.log = first_delay, what, log
        self.runs = 0
        self.halt = threading.Event()

    def job(self) -> None:
        raise NotImplementedError

    def period(self) -> float:
        raise NotImplementedError

    def run(self) -> None:
        delay = self.first_delay
        while not self.halt.wait(delay):
            try:
                self.job()
            except Exception as exc:  # tried again at the next period, never fatal
                self.log.error(f"{self.what} failed", extra={"error": str(exc)})
            self.runs += 1
            delay = self.period()

    def stop(self, timeout: float = 60.0) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout)


__all__ = ["Periodic"]
