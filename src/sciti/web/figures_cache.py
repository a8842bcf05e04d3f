"""An exact cache of the dashboard's lake figures: reused only while nothing they depend on changed.

The key is everything the figures are a function of: the caller's roles and office (row filters),
the current snapshot of each lake table read, the day (windows end today or at the newest data),
the rules generation and the number of inspection results (the hit rates). A new ingest, score,
rule decision or inspection makes a new key, so a cached answer is never stale; it only spares
re-reading unchanged snapshots (tables with nested columns are read in full by the query layer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from sqlalchemy import func, select

from sciti.access import Principal
from sciti.lake import Lake
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskInspection
from sciti.risk import rules_generation
from sciti.settings import Settings

SIZE = 64
_cache: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def _snapshot(lake: Lake, ident: str) -> int | None:
    try:
        snap = lake.catalog.load_table(ident).current_snapshot()
    except (NoSuchTableError, NoSuchNamespaceError):
        return None
    return snap.snapshot_id if snap else None


def state_key(settings: Settings, lake: Lake, principal: Principal, tables: tuple[str, ...]) -> Hashable:
    with session_scope(settings.resolved_ops_db_url) as session:
        inspections = session.scalar(select(func.count()).select_from(RiskInspection)) or 0
        generation = rules_generation(session)
    return (
        settings.resolved_catalog_uri,
        tuple(sorted(principal.roles)),
        principal.office_code,
        tuple(_snapshot(lake, t) for t in tables),
        datetime.now(UTC).date(),
        generation,
        inspections,
    )


def cached(key: Hashable, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    value = compute()
    with _lock:
        _cache[key] = value
        while len(_cache) > SIZE:
            _cache.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _cache.clear()


__all__ = ["cached", "clear", "state_key"]
