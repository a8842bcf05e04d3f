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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

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
_CACHE: dict[tuple[str, int, str], tuple[World, Goods, PartyForms]] = {}


def _world(scale: Scale, seed: int) -> tuple[World, Goods, PartyForms]:
    """The world of a worker process, built once per process (deterministic, so equal everywhere)."""
    key = (scale.name, seed, repr(sorted(scale.params.items())))
    if key not in _CACHE:
        _CACHE.clear()
        world = build_world(scale, seed)
        _CACHE[key] = (world, build_goods(world.data), build_forms(world))
    return _CACHE[key]


def _declaration_chunk(
    world: World, goods: Goods, forms: PartyForms, k: int, first: int, n: int, sinks: Sinks
) -> None:
    chunk = make_chunk(world, goods, forms, k, first, n)
    write_csv_export(chunk, forms, sinks)
    write_xml(chunk, forms, sinks)
    write_cuscar(world, chunk, forms, sinks)
    write_enforcement(world, chunk, sinks)
    write_truth(chunk, forms, sinks)


def _chunk(
    feed: str, world: World, goods: Goods, forms: PartyForms, k: int, first: int, n: int, sinks: Sinks
) -> None:
    """Write chunk ``k`` of a chunked feed (declarations or road)."""
    if feed == "declarations":
        _declaration_chunk(world, goods, forms, k, first, n, sinks)
    else:
        write_road_chunk(world, goods, k, first, n, sinks)


def _part(job: tuple[str, Scale, int, int, int, int, str]) -> tuple[str, dict[str, int]]:
    """Worker: write one chunk into its own part folder; the parent merges parts in order."""
    feed, scale, seed, k, first, n, part = job
    world, goods, forms = _world(scale, seed)
    sinks = Sinks(Path(part))
    try:
        _chunk(feed, world, goods, forms, k, first, n, sinks)
    finally:
        sinks.close()
    return part, sinks.counts


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
    ``workers`` > 1 generates declaration and road chunks in that many processes; same output.
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
    world = build_world(sc, seed)
    goods, forms = build_goods(world.data), build_forms(world)
    sinks = Sinks(out)
    weights, frequent, structurers = travellers(world)
    try:
        write_entities(world, sinks, frequent, structurers)
        write_reference(world, goods, out)
        tick("entities", 1, 1)
        size = int(sc.chunk_size)
        for feed in ("declarations", "road"):
            if feed not in wanted:
                continue
            chunks = list(_chunks(todo[feed], size))
            if workers > 1 and len(chunks) > 1:
                parts = out / ".parts"
                jobs = [
                    (feed, sc, seed, k, first, n, str(parts / f"{feed}-{k:06d}")) for k, first, n in chunks
                ]
                with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                    for (part, counts), job in zip(pool.map(_part, jobs), jobs, strict=True):
                        sinks.merge(Path(part), counts)
                        tick(feed, job[4] + job[5], todo[feed])
                shutil.rmtree(parts, ignore_errors=True)
            else:
                for k, first, n in chunks:
                    _chunk(feed, world, goods, forms, k, first, n, sinks)
                    tick(feed, first + n, todo[feed])
        if "passengers" in wanted:
            write_watchlist(world, sinks)
            for k, first, n in _chunks(todo["passengers"], size):
                write_passengers_chunk(world, k, first, n, sinks, weights, frequent)
                tick("passengers", first + n, todo["passengers"])
        if "currency" in wanted:
            for k, first, n in _chunks(todo["currency"], size):
                write_cbni_chunk(world, k, first, n, sinks, structurers)
                tick("currency", first + n, todo["currency"])
        if "intel" in wanted:
            write_intel(world, sinks, structurers)
            tick("intel", todo["intel"], todo["intel"])
        if "seclogs" in wanted:
            for day in range(int(sc.days)):
                write_seclogs_day(world, day, sinks)
                tick("seclogs", day + 1, todo["seclogs"])
    finally:
        sinks.close()
    report = GenerationReport(out, sc.name, seed, dict(sorted(sinks.counts.items())))
    _write_manifest(world, report)
    return report


def _write_manifest(world: World, report: GenerationReport) -> None:
    doc: dict[str, Any] = {
        "scale": report.scale,
        "seed": report.seed,
        "parameters": world.scale.params,
        "counts": report.counts,
    }
    path = report.out / "ground_truth" / "manifest.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
