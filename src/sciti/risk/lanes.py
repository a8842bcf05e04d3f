"""Lanes: thresholds per record kind, red-lane capacity per office and day, the compliance sample.

The policy is data (``risk/data/lanes.yaml``; an instance may put its own ``lanes.yaml`` in its
home folder). Everything here is pure: the engine asks, the ops database keeps the counters.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from sciti.errors import ConfigError

LANES = ("green", "blue", "yellow", "red")  # lowest severity first
SEVERITY = {lane: i for i, lane in enumerate(LANES)}
LANE_MEANING = {
    "green": "release",
    "blue": "post-clearance audit",
    "yellow": "document check",
    "red": "physical inspection",
}
log = logging.getLogger("sciti.risk.lanes")
POLICY_FILE = "lanes.yaml"


def more_severe(a: str, b: str) -> str:
    return a if SEVERITY[a] >= SEVERITY[b] else b


@dataclass(frozen=True)
class KindLanes:
    thresholds: dict[str, float]  # lane -> lowest score that reaches it
    over_capacity: str = "yellow"
    # lane -> share of records a calibrated model's score puts at or above the lane's threshold
    # (frozen into each model at training: see models/calibrate.py)
    model_shares: dict[str, float] = field(default_factory=dict)

    def lane(self, score: float) -> str:
        chosen = "green"
        for lane, threshold in self.thresholds.items():
            if score >= threshold and SEVERITY[lane] > SEVERITY[chosen]:
                chosen = lane
        return chosen


@dataclass(frozen=True)
class LanePolicy:
    kinds: dict[str, KindLanes]
    capacity_default: int | None = None
    capacity_offices: dict[str, int | None] = field(default_factory=dict)
    sample_share: float = 0.0
    sample_seed: str = ""
    sample_lane: str = "red"

    def for_kind(self, kind: str) -> KindLanes:
        try:
            return self.kinds[kind]
        except KeyError:
            raise ConfigError(
                f"the lane policy has no thresholds for record kind {kind!r}",
                remedy=f"add {kind} under `kinds:` in lanes.yaml",
            ) from None

    def lane(self, kind: str, score: float) -> str:
        return self.for_kind(kind).lane(score)

    def lanes(self, kind: str, scores: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`lane` for a batch of scores."""
        out = np.full(len(scores), "green", dtype=object)
        ordered = sorted(self.for_kind(kind).thresholds.items(), key=lambda kv: SEVERITY[kv[0]])
        for lane, threshold in ordered:  # later (more severe) lanes overwrite earlier ones
            out[scores >= threshold] = lane
        return out

    @property
    def limits_red(self) -> bool:
        """Whether any office has a red-lane capacity (otherwise red is never rationed)."""
        return self.capacity_default is not None or any(v is not None for v in self.capacity_offices.values())

    def capacity(self, office: str | None) -> int | None:
        if office is not None and office in self.capacity_offices:
            return self.capacity_offices[office]
        return self.capacity_default

    def in_sample(self, record_id: str) -> bool:
        """Whether the record is in the random compliance sample (same answer every time)."""
        return self.sample_score(record_id) < self.sample_share

    def sample_score(self, record_id: str) -> float:
        digest = hashlib.sha256(f"{self.sample_seed}\x1f{record_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def in_sample_many(self, record_ids: list[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Vectorised :meth:`in_sample`: the same answers (uint64 / 2**64 rounds as Python's int / int).

        The SHA-256 runs in DuckDB (C++, every core) instead of one Python call per record: the
        first 16 hex digits of ``sha256(seed + "\\x1f" + record_id)`` are the same first 8 bytes.
        """
        n = len(record_ids)
        if n == 0 or self.sample_share <= 0.0:
            return np.zeros(n, dtype=bool)
        ids = (
            record_ids
            if isinstance(record_ids, pa.Array | pa.ChunkedArray)
            else pa.array(record_ids, pa.string())
        )
        if ids.null_count:
            raise ValueError("record ids for the compliance sample must not be null")
        import duckdb  # here, not at import: the policy itself needs no query engine

        con = duckdb.connect()
        try:
            con.register("__ids", pa.table({"id": ids}))
            hashed = con.sql(
                "SELECT ('0x' || left(sha256($seed || id), 16))::UBIGINT AS h FROM __ids",
                params={"seed": f"{self.sample_seed}\x1f"},
            ).to_arrow_table()
        finally:
            con.close()
        words = np.asarray(hashed.column(0).to_numpy(), dtype=np.uint64)
        return words.astype(np.float64) / 2.0**64 < self.sample_share


def parse_policy(doc: dict[str, Any], origin: str = POLICY_FILE) -> LanePolicy:
    """A lane policy from its YAML document; errors name the file and the entry."""
    if not isinstance(doc, dict) or not isinstance(doc.get("kinds"), dict):
        raise ConfigError(f"{origin}: no `kinds:` mapping", remedy="see src/sciti/risk/data/lanes.yaml")
    kinds: dict[str, KindLanes] = {}
    for kind, spec in doc["kinds"].items():
        thresholds = (spec or {}).get("thresholds") or {}
        bad = [lane for lane in thresholds if lane not in LANES or lane == "green"]
        if bad or not thresholds:
            raise ConfigError(
                f"{origin}: kind {kind!r} has thresholds for {bad or 'no lane'}",
                remedy="give thresholds for red, yellow and/or blue (green is what reaches none)",
            )
        over = spec.get("over_capacity", "yellow")
        if over not in LANES or over == "red":
            raise ConfigError(f"{origin}: kind {kind!r} over_capacity {over!r} is not a lane below red")
        kinds[kind] = KindLanes(
            {k: float(v) for k, v in thresholds.items()}, over, _model_shares(origin, kind, spec, thresholds)
        )
    capacity = doc.get("capacity") or {}
    sample = doc.get("sample") or {}
    share = float(sample.get("share", 0.0))
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"{origin}: sample share {share} is not between 0 and 1")
    lane = sample.get("lane", "red")
    if lane not in LANES:
        raise ConfigError(f"{origin}: sample lane {lane!r} is not one of {LANES}")
    return LanePolicy(
        kinds=kinds,
        capacity_default=capacity.get("default"),
        capacity_offices={str(k): v for k, v in (capacity.get("offices") or {}).items()},
        sample_share=share,
        sample_seed=str(sample.get("seed", "")),
        sample_lane=lane,
    )


def _model_shares(
    origin: str, kind: str, spec: dict[str, Any], thresholds: dict[str, Any]
) -> dict[str, float]:
    """``model_shares``: each named lane has a threshold; a more severe lane holds a smaller share."""
    raw = spec.get("model_shares") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: kind {kind!r} model_shares is not a mapping of lane to share")
    shares: dict[str, float] = {}
    for lane, value in raw.items():
        if lane not in thresholds:
            raise ConfigError(
                f"{origin}: kind {kind!r} has a model share for {lane!r} but no threshold for it",
                remedy="give model_shares only for lanes listed under thresholds",
            )
        share = float(value)
        if not 0.0 < share < 1.0:
            raise ConfigError(
                f"{origin}: kind {kind!r} model share of {lane} is {share}, not between 0 and 1"
            )
        shares[lane] = share
    ordered = sorted(shares.items(), key=lambda kv: float(thresholds[kv[0]]))
    for (low, s_low), (high, s_high) in zip(ordered, ordered[1:], strict=False):
        if not s_high < s_low:
            raise ConfigError(
                f"{origin}: kind {kind!r} model share of {high} ({s_high}) is not below "
                f"that of {low} ({s_low})",
                remedy="a lane with a higher threshold must hold a smaller share of records",
            )
    return shares


def load_policy(home: Path | None = None) -> LanePolicy:
    """The instance's ``<home>/lanes.yaml`` if there is one, else the packaged default."""
    text = resources.files("sciti.risk").joinpath("data", POLICY_FILE).read_text(encoding="utf-8")
    default = parse_policy(yaml.safe_load(text))
    if home is None or not (home / POLICY_FILE).is_file():
        return default
    path = home / POLICY_FILE
    policy = parse_policy(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    for kind, lanes in default.kinds.items():
        mine = policy.kinds.get(kind)
        if lanes.model_shares and mine is not None and not mine.model_shares:
            # The instance's file replaces the packaged one whole: an example without the shares
            # silently turned calibration off (the model's score became 100 x probability).
            log.warning(
                "%s gives no model_shares for %s: models trained from now on score it uncalibrated "
                "(100 x probability); copy model_shares from the packaged lanes.yaml to keep them",
                path,
                kind,
            )
    return policy


def ration_red(
    policy: LanePolicy,
    offices: list[str | None],
    days: list[str],
    scores: np.ndarray,
    lanes: np.ndarray,
    used: dict[tuple[str | None, str], int] | None = None,
) -> np.ndarray:
    """Which red decisions fit the capacity (True) when handed out highest score first.

    ``used``: places already taken per (office, day), e.g. by earlier batches or real-time answers.
    """
    keep = np.ones(len(scores), dtype=bool)
    red = np.flatnonzero(lanes == "red")
    if red.size == 0:
        return keep
    order = red[np.argsort(-scores[red], kind="stable")]
    taken: dict[tuple[str | None, str], int] = dict(used or {})
    for i in order:
        key = (offices[i], days[i])
        cap = policy.capacity(offices[i])
        if cap is None:
            continue
        n = taken.get(key, 0)
        if n >= cap:
            keep[i] = False
        else:
            taken[key] = n + 1
    return keep


__all__ = [
    "LANES",
    "LANE_MEANING",
    "SEVERITY",
    "KindLanes",
    "LanePolicy",
    "load_policy",
    "more_severe",
    "parse_policy",
    "ration_red",
]
