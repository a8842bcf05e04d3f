"""Helper processes of the server: the assessment flusher and the background jobs.

Heavy Python work on a thread of the server holds the interpreter lock, and every real-time answer
waits behind it; in a process of its own it uses the other core instead. Both helpers are started
the same way: ``python -m MODULE`` in its own process group (Ctrl+C on the server must not
interrupt it mid-commit), with what it needs pickled on its stdin (never on its command line,
where anyone on the machine can read it). Closing its stdin is its only stop signal, so it also
stops when the server dies (decision 0061).

What a helper does is counted on the server's ``/metrics``, where operators look: the child sends
small events as JSON lines on its stdout (:func:`send`), and the server applies them to its own
metrics (:func:`relay`).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

# Receives what a job did, one event at a time (plain JSON values: it may cross processes).
Report = Callable[[dict[str, Any]], None]
_SENDING = threading.Lock()


def spawn(module: str, payload: Any, *, events: Report, log: logging.Logger) -> subprocess.Popen[bytes]:
    """Start ``python -m module``, hand it ``payload`` (see :func:`receive`), and pass each event it
    sends to ``events`` on a thread of ours until it ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0
    )
    threading.Thread(target=relay, args=(proc, events, log), name=f"{module}-events", daemon=True).start()
    assert proc.stdin is not None
    data = pickle.dumps(payload)
    proc.stdin.write(len(data).to_bytes(8, "big") + data)
    proc.stdin.flush()
    return proc


def stop(proc: subprocess.Popen[bytes], *, timeout: float, what: str, log: logging.Logger) -> None:
    """Close the child's stdin and wait for it to finish its work; terminate it after ``timeout``."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.error("the %s did not stop in time; terminating it", what)
        proc.terminate()
        proc.wait(timeout=10)


def relay(proc: subprocess.Popen[bytes], events: Report, log: logging.Logger) -> None:
    """Pass each event the child sends to ``events`` until its stdout closes (it ended)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            events(json.loads(line))
        except (ValueError, TypeError, KeyError, AttributeError):  # not an event of ours: shown, skipped
            log.warning("process %s wrote a line that is not an event: %r", proc.pid, line[:200])


def send(event: dict[str, Any]) -> None:
    """In the child: hand ``event`` to the server (a :data:`Report`)."""
    line = json.dumps(event) + "\n"
    with _SENDING:
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except BrokenPipeError:
            # The server is gone (killed, or ended by a signal before it could stop us); our stdin
            # closes too, which stops us. Later events go nowhere, quietly (also at exit's flush).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def receive(*, niceness: int) -> tuple[Any, threading.Event]:
    """In the child: (the parent's payload, an event set once the parent stops or dies).

    Also ignores SIGINT (stopping is the parent's job: a signal sent to a whole group must not cut
    a pass short) and adds ``niceness`` to the process's (0: the server's priority).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness:
        os.nice(niceness)
    size = int.from_bytes(sys.stdin.buffer.read(8), "big")
    payload = pickle.loads(sys.stdin.buffer.read(size))  # noqa: S301 (from our own parent)
    stopped = threading.Event()

    def watch_parent() -> None:  # stdin closes when the server stops or dies
        sys.stdin.buffer.read()
        stopped.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    return payload, stopped


__all__ = ["Report", "receive", "relay", "send", "spawn", "stop"]
