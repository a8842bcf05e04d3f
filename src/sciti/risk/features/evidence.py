"""How much evidence a smoothed rate rests on: its group's past inspections and frauds (decision 0115).

A rate feature (``trader_hit_rate``, ``hs_risk``, ...) is ``(frauds + m * overall) / (inspections + m)``
over its history group (features.yaml ``history``). Its explanation says the counts behind it: they
are looked up in the reference's history table by the explained row's key values, with the same
keys and lookups as ``single.compute_one``, so batch and real time say the same for the same record.
Only the explained rows are looked up; no feature column is added to the model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from sciti.risk.features.catalog import config
from sciti.risk.features.prepare import py_key
from sciti.risk.features.reference import Reference, history_groups
from sciti.risk.features.spec import ORIGIN_COLUMN

# The words say a rate was pulled toward the overall one while the overall rate weighs at least
# this share of the estimate: m / (inspections + m) >= 0.1, i.e. up to 9 m inspections (180 at m = 20).
PULL_SAID = 0.1
# Without a reference's counts (e.g. point-in-time features of an evaluation): how such a rate is made.
_HOW = (
    "from the share of past inspections that found {fraud}, "
    "pulled toward the overall rate when inspections are few"
)
_VALUE = re.compile(r"\{value(?::([^}]*))?\}")


class Source(NamedTuple):
    group: str  # history group (features.yaml)
    keys: tuple[str, ...]  # the row's columns that make its key
    stat: str  # hit_rate | critical_rate
    unit: str  # declaration | item: what one inspection counts


@lru_cache(maxsize=16)
def rate_sources(kind: str) -> dict[str, Source]:
    """Per smoothed-rate feature of ``kind``, the history group it is read from."""
    if kind == "declaration":
        return {
            name: Source(g["group"], tuple(g["keys"]), stat, g["unit"])
            for g in history_groups()
            for stat, name in g["outputs"].items()
            if stat in ("hit_rate", "critical_rate")
        }
    if kind in ORIGIN_COLUMN:  # cargo kinds read two declaration groups (as single.compute_one does)
        units = {g["group"]: g["unit"] for g in history_groups()}
        return {
            "hs_risk": Source("hs", ("hs6",), "hit_rate", units["hs"]),
            "origin_risk": Source("origin", (ORIGIN_COLUMN[kind],), "hit_rate", units["origin"]),
        }
    return {}


@dataclass(frozen=True)
class Evidence:
    """The counts behind one smoothed rate."""

    inspections: int
    frauds: int | None  # frauds the rate counts (critical ones for a critical rate); None: not known
    overall: float  # the overall rate it is pulled toward
    critical: bool
    unit: str  # declaration | item
    pulled: bool  # few inspections: the overall rate weighs enough to be said

    def said(self) -> dict[str, Any]:
        """The values a factor's code carries (engine/reasons.py)."""
        return {
            "inspections": self.inspections,
            "frauds": self.frauds,
            "critical": self.critical,
            "unit": self.unit,
            "overall": self.overall,
            "pulled": self.pulled,
        }

    def words(self, spec: str = ".0%") -> str:
        """E.g. "4 frauds in 10 past inspections, pulled toward the overall 23% as inspections are few"
        (``spec``: how the rate itself is formatted, so the overall rate reads alike)."""
        if self.unit == "item":
            where = "inspected goods item" + _s(self.inspections)
        else:
            where = "past inspection" + _s(self.inspections)
        if self.frauds is None:
            text = f"from {self.inspections:,} {where}"
        else:
            fraud = ("critical fraud" if self.critical else "fraud") + _s(self.frauds)
            text = f"{self.frauds:,} {fraud} in {self.inspections:,} {where}"
        if self.pulled:
            text += f", pulled toward the overall {format(self.overall, spec)} as inspections are few"
        return text


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def evidence_of(ref: Reference, kind: str, name: str, row: dict[str, Any]) -> Evidence | None:
    """The counts behind ``row``'s rate ``name`` in ``ref``; None for a feature that is no smoothed
    rate, or a value that is not this reference's (e.g. point in time): then no counts are claimed."""
    src = rate_sources(kind).get(name)
    value = row.get(name)
    if src is None or not isinstance(value, float):
        return None
    critical = src.stat == "critical_rate"
    overall = ref.prior_critical if critical else ref.prior
    key = py_key([row.get(c) for c in src.keys])
    found = ref.lookups["history"].get(src.group, {}).get(key) if key is not None else None
    m = float(config()["smoothing"])
    inspections = int(found["inspections"]) if found else 0
    rate = found[src.stat] if found else overall
    if not math.isclose(value, rate, rel_tol=1e-9, abs_tol=1e-12):
        return None
    frauds: int | None = int(found["frauds"]) if found else 0
    if critical and found:
        frauds = _criticals(rate, inspections, m, overall)
    pulled = inspections > 0 and m / (inspections + m) >= PULL_SAID
    return Evidence(inspections, frauds, overall, critical, src.unit, pulled)


def _criticals(rate: float, inspections: int, m: float, overall: float) -> int | None:
    """Critical frauds behind a critical rate: the history table keeps the rate, not the count, so
    it is solved from the rate's formula; None when that gives no whole count (another smoothing)."""
    x = rate * (inspections + m) - m * overall
    n = round(x)
    return n if abs(x - n) < 1e-6 and 0 <= n <= inspections else None


def evidence_words(kind: str, name: str, template: str, evidence: Evidence | None) -> str:
    """What a rate's template says in ``{evidence}``: its counts, or how such a rate is made."""
    if evidence is not None:
        found = _VALUE.search(template)
        return evidence.words((found.group(1) or ".0%") if found else ".0%")
    src = rate_sources(kind).get(name)
    return _HOW.format(fraud="critical fraud" if src and src.stat == "critical_rate" else "fraud")


__all__ = ["PULL_SAID", "Evidence", "Source", "evidence_of", "evidence_words", "rate_sources"]
