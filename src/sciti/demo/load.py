"""Ingest a generated world through the platform's own connectors (``sciti demo load DIR``).

Every feed folder of the world has its connector (``connectors/demo-*``, plus ``wco-dec`` and
``edifact-cuscar`` for the XML and EDIFACT channels); each file is one batch, exactly as if the
source system had delivered it. The reference files are published whole to the ``ref`` zone.
``ground_truth/`` is never read: only the feed folders listed in ``FEEDS`` are visited.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from sciti.acquire import BatchResult, Runner, load_connector
from sciti.acquire.units import files_in
from sciti.demo.errors import DemoError
from sciti.lake import publish_ref
from sciti.settings import Settings

TRUTH = "ground_truth"
BUNDLE = 500  # XML declarations per zip: one lake commit per file would dominate the load
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed member times: the same files make the same zip (a duplicate)


@dataclass(frozen=True)
class Feed:
    """One feed of the world: the folder its files are in and the connector that reads them."""

    folder: str
    connector: str
    bundle: bool = False  # many small files: delivered in zip archives of BUNDLE files, one batch each


# In load order: reference-like and parent feeds first, so a dashboard filling up makes sense.
FEEDS: tuple[Feed, ...] = (
    Feed("declarations/csv", "demo-declarations"),
    Feed("declarations/csv", "demo-declaration-items"),
    Feed("declarations/csv", "demo-declaration-parties"),
    Feed("declarations/xml", "wco-dec", bundle=True),
    Feed("manifests/cuscar", "edifact-cuscar"),
    Feed("road", "demo-road-cargo"),
    Feed("road", "demo-crossings"),
    Feed("elock", "demo-elock"),
    Feed("passengers", "demo-passengers"),
    Feed("currency", "demo-currency"),
    Feed("inspections", "demo-inspections"),
    Feed("seizures", "demo-seizures"),
    Feed("cases", "demo-cases"),
    Feed("intel", "demo-intel-reports"),
    Feed("intel", "demo-watchlist"),
    Feed("seclogs", "demo-seclogs"),
)

# ref.<name> tables published from reference/ (code columns stay text: "0207" is not 207).
REFERENCE_TEXT = {"hs_code", "code", "locode", "unit"}


@dataclass
class FeedResult:
    """What one connector did with one feed folder."""

    feed: Feed
    files: int = 0
    results: list[BatchResult] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(r.received for r in self.results)

    @property
    def stored(self) -> int:
        return sum(r.stored for r in self.results)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.results)

    @property
    def already_stored(self) -> int:
        return sum(r.already_stored for r in self.results)

    @property
    def failed(self) -> list[BatchResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def tables(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            for table, n in r.tables.items():
                out[table] = out.get(table, 0) + n
        return out


@dataclass
class LoadReport:
    """The whole load: one result per feed, and the reference tables published (table -> rows)."""

    world: Path
    feeds: list[FeedResult] = field(default_factory=list)
    reference: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[BatchResult]:
        return [r for f in self.feeds for r in f.failed]


# progress(feed, bytes done in this feed, bytes of this feed)
Progress = Callable[[Feed, int, int], None]


def plan_load(
    settings: Settings, world: Path, feeds: list[str] | None = None
) -> list[tuple[Feed, list[Path]]]:
    """The files each feed's connector will take (its own ``files`` pattern), never ground truth."""
    world = Path(world)
    if world.name == TRUTH or TRUTH in world.resolve().parts:
        raise DemoError(f"{world} is ground truth, which is never ingested", remedy="give the world folder")
    if not any((world / f.folder).is_dir() for f in FEEDS):
        raise DemoError(
            f"{world} is not a generated world (none of its feed folders is there)",
            remedy="give the --out folder of `sciti demo generate`",
        )
    unknown = sorted(set(feeds or ()) - {f.connector for f in FEEDS})
    if unknown:
        raise DemoError(
            f"no demo feed is read by connector {unknown[0]!r}",
            remedy=f"use one of: {', '.join(f.connector for f in FEEDS)}",
        )
    plan = []
    for feed in FEEDS:
        if feeds is not None and feed.connector not in feeds:
            continue
        folder = world / feed.folder
        pattern = load_connector(settings, feed.connector).files
        files = files_in(folder, pattern) if folder.is_dir() else []
        plan.append((feed, [p for p in files if TRUTH not in p.relative_to(world).parts]))
    return plan


def load_world(
    settings: Settings,
    world: Path,
    *,
    feeds: list[str] | None = None,
    reference: bool = True,
    progress: Progress | None = None,
) -> LoadReport:
    """Ingest every feed of ``world`` through its connector; publish ``reference/`` to ``ref``.

    ``feeds`` limits the load to those connector names. Loading the same world again stores
    nothing new: each file is a batch the runner already has (``duplicate``).
    """
    world = Path(world)
    plan = plan_load(settings, world, feeds)  # refuses ground truth and folders that are not a world
    runner = Runner(settings)
    runner.recover()  # batches a killed load left half-way are finished first
    report = LoadReport(world=world)
    for feed, files in plan:
        connector = load_connector(settings, feed.connector)
        result = FeedResult(feed, files=len(files))
        total = sum(p.stat().st_size for p in files)
        done = 0
        if progress:
            progress(feed, 0, total)
        # pid first: the runner clears a dead process's spool folders, so a killed load leaves none
        with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-demo-", dir=runner.spool) as work:
            for unit, members in _units(feed, files, Path(work)):
                result.results += runner.ingest_path(connector, unit)
                done += sum(p.stat().st_size for p in members)
                if progress:
                    progress(feed, done, total)
        report.feeds.append(result)
    if reference and (world / "reference").is_dir():
        report.reference = publish_reference(settings, world / "reference", runner)
    return report


def _units(feed: Feed, files: list[Path], work: Path) -> Iterator[tuple[Path, list[Path]]]:
    """(unit to ingest, the world's files in it): each file itself, or zip bundles of BUNDLE files."""
    if not feed.bundle or len(files) <= 1:
        yield from ((p, [p]) for p in files)
        return
    for start in range(0, len(files), BUNDLE):
        part = files[start : start + BUNDLE]
        name = feed.folder.replace("/", "-")
        target = work / f"{name}-{start // BUNDLE + 1:04d}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in part:
                archive.writestr(
                    zipfile.ZipInfo(path.name, ZIP_TIME), path.read_bytes(), zipfile.ZIP_DEFLATED
                )
        yield target, part


def publish_reference(settings: Settings, folder: Path, runner: Runner | None = None) -> dict[str, int]:
    """Publish the world's reference files whole to the ``ref`` zone: table -> rows."""
    lake = (runner or Runner(settings)).lake
    tables: dict[str, pa.Table] = {}
    prices = folder / "unit_prices.csv"
    if prices.is_file():
        tables["demo_unit_prices"] = _read_csv(prices)
    points = folder / "control_points.csv"
    routes_file = folder / "elock_routes.json"
    routes: dict[str, Any] = {}
    if routes_file.is_file():
        routes = json.loads(routes_file.read_text(encoding="utf-8"))
    if points.is_file():
        tables["demo_control_points"] = _places(_read_csv(points), routes.get("clearance_points", {}))
    if routes.get("routes"):
        tables["demo_elock_routes"] = _routes(routes["routes"])
    published = {}
    for name, table in tables.items():
        publish_ref(lake, name, table)
        published[f"ref.{name}"] = table.num_rows
    return published


def _read_csv(path: Path) -> pa.Table:
    names = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    types = {n: pa.string() for n in names if n in REFERENCE_TEXT}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def _places(points: pa.Table, clearance: dict[str, dict[str, Any]]) -> pa.Table:
    """Control points of the administration plus the Mainland clearance points e-lock trips use."""
    rows = points.to_pylist()
    for code, p in clearance.items():
        rows.append(
            {
                "code": code,
                "name": p.get("name"),
                "name_zh": None,
                "kind": "clearance_point",
                "lat": p.get("lat"),
                "lon": p.get("lon"),
                "locode": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=points.schema)


def _routes(routes: list[dict[str, Any]]) -> pa.Table:
    """One row per approved e-lock corridor; the path as WKT (longitude latitude, WGS 84)."""
    return pa.table(
        {
            "route_id": [f"{r['from']}>{'>'.join(r['via'])}>{r['to']}" for r in routes],
            "from_point": [r["from"] for r in routes],
            "via": [",".join(r["via"]) for r in routes],
            "to_point": [r["to"] for r in routes],
            "waypoint_count": pa.array([len(r["waypoints"]) for r in routes], pa.int32()),
            "path_wkt": [
                "LINESTRING (" + ", ".join(f"{lon} {lat}" for lat, lon in r["waypoints"]) + ")"
                for r in routes
            ],
        }
    )
