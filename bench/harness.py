"""Timing helpers shared by the parse benchmarks: one core, then two worker processes, then the goal."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[..., int], *args: Any) -> tuple[int, float, float]:
    """(count, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn(*args)
    return n, time.perf_counter() - wall, time.process_time() - cpu


def two_processes(
    init: Callable[..., None], initargs: tuple, worker: Callable[[int], tuple[int, float]], passes: int
) -> tuple[float, float]:
    """Items per second (wall, CPU) of two worker processes; ``worker(passes)`` returns (count, CPU s)."""
    with mp.get_context("spawn").Pool(2, initializer=init, initargs=initargs) as pool:
        pool.map(worker, [1] * 2, chunksize=1)  # warm up: imports done, schemas/directories loaded
        start = time.perf_counter()
        results = pool.map(worker, [passes] * 2, chunksize=1)
        wall = time.perf_counter() - start
    n = sum(r[0] for r in results)
    return n / wall, n / max(r[1] for r in results)


def report_two(label: str, what: str, goal: int, wall_rate: float, cpu_rate: float) -> None:
    """Print the two-process line and the ratio to the issue's goal."""
    print(
        f"ours    {label}, 2 procs : {wall_rate:9,.0f} /s wall  {cpu_rate:9,.0f} /s CPU"
        f"  (cores: {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})"
    )
    verdict = "meets" if cpu_rate >= goal else "BELOW"
    print(
        f"goal    {goal:,} {what}/s on 2 cores -> ratio ours/goal = "
        f"{cpu_rate / goal:.2f} by CPU time ({verdict} the goal), {wall_rate / goal:.2f} by wall clock"
    )
