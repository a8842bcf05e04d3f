"""Generate the whole synthetic world into a folder: feeds in their formats, ground truth apart.

DIR/declarations/csv/*.csv     clearance-system export (declarations, items, parties)
DIR/declarations/xml/*.xml     declarations lodged as WCO DEC XML (DMS profile)
DIR/manifests/cuscar/*.edi     sea and air cargo manifests, UN/EDIFACT CUSCAR D.96B
DIR/road/road_cargo.jsonl      road-cargo advance information
DIR/road/crossings.csv         vehicle crossings at land control points
DIR/elock/messages.jsonl       e-lock GPS fixes and lock events
DIR/passengers/api_records.jsonl, DIR/currency/cbni.csv
DIR/inspections, seizures, cases/*.csv
DIR/intel/reports.jsonl, DIR/intel/watchlist.csv
DIR/seclogs/{auth,app,firewall}.jsonl
DIR/reference/                 reference unit prices, control points, approved e-lock routes
DIR/ground_truth/              entities, their forms, labels, per-declaration truth, manifest
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from sciti.demo.catalogue import Goods, PartyForms, build_forms, build_goods
from sciti.demo.config import Scale, load_scale
from sciti.demo.cuscar import write_cuscar
from sciti.demo.decl_feeds import write_csv_export, write_truth
from sciti.demo.declarations import make_chunk
from sciti.demo.enforcement import write_enforcement
from sciti.demo.entities import World, build_world
from sciti.demo.errors import DemoError
from sciti.demo.intel import write_intel
from sciti.demo.road import write_road_chunk
from sciti.demo.seclogs import write_seclogs_day
from sciti.demo.travel import travellers, write_cbni_chunk, write_passengers_chunk, write_watchlist
from sciti.demo.truth import write_entities, write_reference
from sciti.demo.wco_xml import write_xml
from sciti.demo.writers import Sinks

# progress(feed, done, total): called after each chunk so a CLI can draw bars.
Progress = Callable[[str, int, int], None]


@dataclass
class GenerationReport:
    out: Path
    scale: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    # CPU seconds spent on each feed, summed over the processes that ran its jobs ("setup" is
    # building the entities in each process). CPU, not wall time: on a shared machine it is the
    # figure that says what a run costs, and per-feed rates are computed from it.
    cpu_seconds: dict[str, float] = field(default_factory=dict)


# Top-level folders a world is written into (cleared first when overwriting).
FEED_DIRS = (
    "declarations",
    "manifests",
    "road",
    "elock",
    "passengers",
    "currency",
    "inspections",
    "seizures",
    "cases",
    "intel",
    "seclogs",
    "reference",
    "ground_truth",
)
# Security-log days generated per job (a day is small; one job per day would be mostly overhead).
SECLOG_DAYS_PER_JOB = 30


@dataclass
class _Context:
    """What every job of one world reads: entities, goods, party forms, who travels."""

    world: World
    goods: Goods
    forms: PartyForms
    travel: tuple[np.ndarray, np.ndarray, np.ndarray]


_CACHE: dict[tuple[str, int, str], _Context] = {}

# One unit of work: (feed, chunk number, first unit, number of units). Jobs only read the world
# and draw from their own random stream, so they can run in any process in any order; their
# outputs are appended in job order, which is what makes the bytes independent of workers.
Job = tuple[str, int, int, int]


def _build(scale: Scale, seed: int) -> _Context:
    world = build_world(scale, seed)
    return _Context(world, build_goods(world.data), build_forms(world), travellers(world))


def _context(scale: Scale, seed: int) -> _Context:
    """The world of a worker process, built once per process (deterministic, so equal everywhere)."""
    key = (scale.name, seed, repr(sorted(scale.params.items())))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _build(scale, seed)
    return _CACHE[key]


def _declaration_chunk(ctx: _Context, k: int, first: int, n: int, sinks: Sinks) -> None:
    world, forms = ctx.world, ctx.forms
    chunk = make_chunk(world, ctx.goods, forms, k, first, n)
    write_csv_export(chunk, forms, sinks)
    write_xml(chunk, forms, sinks)
    write_cuscar(world, chunk, forms, sinks)
    write_enforcement(world, chunk, sinks)
    write_truth(chunk, forms, sinks)


def _run(job: Job, ctx: _Context, sinks: Sinks) -> None:
    feed, k, first, n = job
    world = ctx.world
    weights, frequent, structurers = ctx.travel
    if feed == "entities":
        write_entities(world, sinks, frequent, structurers)
        write_reference(world, ctx.goods, sinks.root)
    elif feed == "declarations":
        _declaration_chunk(ctx, k, first, n, sinks)
    elif feed == "road":
        write_road_chunk(world, ctx.goods, k, first, n, sinks)
    elif feed == "watchlist":
        write_watchlist(world, sinks)
    elif feed == "passengers":
        write_passengers_chunk(world, k, first, n, sinks, weights, frequent)
    elif feed == "currency":
        write_cbni_chunk(world, k, first, n, sinks, structurers)
    elif feed == "intel":
        write_intel(world, sinks, structurers)
    elif feed == "seclogs":
        for day in range(first, first + n):
            write_seclogs_day(world, day, sinks)
    else:  # pragma: no cover - jobs come from _jobs only
        raise ValueError(feed)


def _part(args: tuple[Job, Scale, int, str]) -> tuple[str, dict[str, int], float, float]:
    """Worker: write one job into its own part folder; the parent appends parts in job order.

    Returns the part, its row counts, the CPU seconds of the job and of building the world
    (non-zero only for the first job a process runs).
    """
    job, scale, seed, part = args
    t0 = time.process_time()
    ctx = _context(scale, seed)
    t1 = time.process_time()
    sinks = Sinks(Path(part))
    try:
        _run(job, ctx, sinks)
    finally:
        sinks.close()
    return part, sinks.counts, time.process_time() - t1, t1 - t0


def _chunks(total: int, size: int):
    for k, first in enumerate(range(0, total, size)):
        yield k, first, min(size, total - first)


def plan(scale: Scale) -> dict[str, int]:
    """Units of work per feed (what the progress bars count)."""
    return {
        "entities": 1,
        "declarations": int(scale.declarations),
        "road": int(scale.road_cargo),
        "passengers": int(scale.passengers),
        "currency": int(scale.currency_declarations),
        "intel": int(scale.intel_reports),
        "seclogs": int(scale.days),
    }


def _jobs(scale: Scale, wanted: set[str]) -> list[Job]:
    """Every job of a run, in output order."""
    todo, size = plan(scale), int(scale.chunk_size)
    jobs: list[Job] = [("entities", 0, 0, 1)]
    for feed in ("declarations", "road"):
        if feed in wanted:
            jobs += [(feed, k, first, n) for k, first, n in _chunks(todo[feed], size)]
    if "passengers" in wanted:
        jobs.append(("watchlist", 0, 0, 0))
        jobs += [("passengers", k, first, n) for k, first, n in _chunks(todo["passengers"], size)]
    if "currency" in wanted:
        jobs += [("currency", k, first, n) for k, first, n in _chunks(todo["currency"], size)]
    if "intel" in wanted:
        jobs.append(("intel", 0, 0, todo["intel"]))
    if "seclogs" in wanted:
        jobs += [("seclogs", k, first, n) for k, first, n in _chunks(todo["seclogs"], SECLOG_DAYS_PER_JOB)]
    return jobs


def _results(
    jobs: list[Job], sc: Scale, seed: int, out: Path, workers: int, sinks: Sinks
) -> Iterator[tuple[Job, float, float]]:
    """Run the jobs, yielding each (with CPU seconds of job and of set-up) once its output is in
    place, in job order."""
    if workers <= 1:
        t0 = time.process_time()
        ctx = _build(sc, seed)
        setup = time.process_time() - t0
        for job in jobs:
            t0 = time.process_time()
            _run(job, ctx, sinks)
            yield job, time.process_time() - t0, setup
            setup = 0.0
        return
    parts = out / ".parts"
    args = [(job, sc, seed, str(parts / f"{i:06d}-{job[0]}")) for i, job in enumerate(jobs)]
    # spawn, not fork: the parent may hold Arrow and numpy thread pools, which fork does not copy.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for (part, counts, secs, setup), job in zip(pool.map(_part, args), jobs, strict=True):
            sinks.merge(Path(part), counts)
            yield job, secs, setup
    shutil.rmtree(parts, ignore_errors=True)


def generate(
    out: Path,
    scale: str | Scale = "tiny",
    seed: int = 1,
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    feeds: set[str] | None = None,
    workers: int = 1,
) -> GenerationReport:
    """Write the world for ``scale`` and ``seed`` under ``out``. Same inputs, same bytes.

    ``feeds`` limits generation to some of :func:`plan`'s feeds (entities are always written).
    ``workers`` > 1 generates the feeds' chunks in that many processes; same output.
    """
    sc = load_scale(scale) if isinstance(scale, str) else scale
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DemoError(f"output folder {out} is not empty", remedy="choose a new folder or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for name in (*FEED_DIRS, ".parts"):  # our own folders only: writers append
        shutil.rmtree(out / name, ignore_errors=True)
    tick = progress or (lambda feed, done, total: None)
    todo = plan(sc)
    wanted = set(todo) if feeds is None else feeds | {"entities"}
    sinks = Sinks(out)
    cpu: dict[str, float] = {"setup": 0.0}
    try:
        for (feed, _k, first, n), secs, setup in _results(_jobs(sc, wanted), sc, seed, out, workers, sinks):
            feed = "passengers" if feed == "watchlist" else feed
            cpu[feed] = cpu.get(feed, 0.0) + secs
            cpu["setup"] += setup
            if n:
                tick(feed, first + n, todo[feed])
    finally:
        sinks.close()
    report = GenerationReport(out, sc.name, seed, dict(sorted(sinks.counts.items())), cpu)
    _write_manifest(sc, report)
    return report


def _write_manifest(scale: Scale, report: GenerationReport) -> None:
    doc: dict[str, Any] = {
        "scale": report.scale,
        "seed": report.seed,
        "parameters": scale.params,
        "counts": report.counts,
    }
    path = report.out / "ground_truth" / "manifest.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
