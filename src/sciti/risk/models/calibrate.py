"""Model score calibration: a probability becomes a 0-100 score whose lane thresholds mean shares of traffic.

A model trained on inspected records learns from a population rich in fraud, so its raw
probabilities are high on ordinary traffic and ``100 x p`` against fixed lane thresholds sends an
arbitrary share of records to each lane. At training time the model scores every record of the
kind in its validation period, with the features the engine computes, and each
lane threshold is tied to a stated share of those records (``model_shares`` in lanes.yaml): e.g.
score 80 = the top 2 %. The mapping (101 knots: the raw probability and the traffic share at each
whole score) is stored in the model's meta, so a model version always gives the same scores, and the
reasons can say what a score means: "Model X gives 87 out of 100: top 1.2% of declarations ...".

Scores between knots are interpolated linearly in the raw probability, so the map is monotone:
ranking (and so every ranking metric) is the model's own. See docs/decisions/0060.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.risk.errors import ModelError

if TYPE_CHECKING:
    from sciti.risk.lanes import LanePolicy
    from sciti.settings import Settings

METHOD = "traffic-share/1"
MIN_UNITS = 200  # fewer scored records than this cannot place a 2 % threshold: the model stays raw
UNIT_WORDS = {"declaration": "declarations"}


@dataclass(frozen=True)
class Calibration:
    """Knots of the map from raw probability to score: ``raw[k]`` scores ``k`` (k = 0..100)."""

    raw: tuple[float, ...]  # non-decreasing, 101 values
    share: tuple[float, ...]  # share of the calibration traffic scoring at least k (1.0 at k = 0)
    units: int  # records the shares are counted over
    unit: str  # "declarations", ...
    period: str  # "2026-01-01 to 2026-03-31"

    def __post_init__(self) -> None:
        if len(self.raw) != 101 or len(self.share) != 101:
            raise ModelError("a calibration needs 101 knots (scores 0 to 100)")
        if any(b < a for a, b in zip(self.raw, self.raw[1:], strict=False)):
            raise ModelError("calibration knots must not decrease", remedy="retrain the model")

    @cached_property  # the knots never change; a real-time answer should not re-sort them
    def _xy(self) -> tuple[np.ndarray, np.ndarray]:
        # A run of equal knots (many records with one probability) keeps its lowest score: a
        # record's score never claims a smaller share of traffic than records like it hold.
        raw, first = np.unique(np.asarray(self.raw, dtype=np.float64), return_index=True)
        return raw, first.astype(np.float64)

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """0-100 scores, two decimals, for raw probabilities (the same numbers in every path)."""
        x, y = self._xy
        p = np.asarray(probabilities, dtype=np.float64)
        if len(x) == 1:  # a constant model: everything at or above its one value is the top
            return np.where(p >= x[0], 100.0, 0.0)
        return np.round(np.interp(p, x, y), 2)

    def share_text(self, whole: int) -> str:
        """What a whole score means, e.g. "top 1.2% of declarations scored in 2026-01-01 to 2026-03-31"."""
        k = min(100, max(0, int(whole)))
        share = self.share[k]
        if share > 0.5:  # "top 96%" reads as praise: say plainly that most records score higher
            return f"{_percent(share)} of {self.unit} scored in {self.period} score as high or higher"
        return f"top {_percent(share)} of {self.unit} scored in {self.period}"

    def to_meta(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "raw": list(self.raw),
            "share": list(self.share),
            "units": self.units,
            "unit": self.unit,
            "period": self.period,
        }

    @classmethod
    def from_meta(cls, doc: dict[str, Any]) -> Calibration:
        if doc.get("method") != METHOD:
            raise ModelError(
                f"model calibration {doc.get('method')!r} is not known (expected {METHOD})",
                remedy="upgrade SCITI or retrain the model",
            )
        return cls(
            tuple(float(v) for v in doc["raw"]),
            tuple(float(v) for v in doc["share"]),
            int(doc["units"]),
            str(doc["unit"]),
            str(doc["period"]),
        )


def _percent(share: float) -> str:
    pct = share * 100.0
    if pct >= 10 or pct == 0:
        return f"{pct:.0f}%"
    if pct >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


_CACHE: dict[int, tuple[Any, Calibration]] = {}


def calibration_of(model: Any) -> Calibration | None:
    """The model's calibration (parsed once per meta document), None for a raw-probability model."""
    doc = (getattr(model, "meta", None) or {}).get("calibration")
    if not doc:
        return None
    hit = _CACHE.get(id(doc))
    if hit is not None and hit[0] is doc:
        return hit[1]
    cal = Calibration.from_meta(doc)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(doc)] = (doc, cal)
    return cal


def model_scores(model: Any, probabilities: np.ndarray) -> np.ndarray:
    """The model's 0-100 scores (two decimals): calibrated when it carries a calibration, else 100 x p.

    Both the real-time and the batch path call this on the model's probabilities, so one record
    gets the same number in both (100 x p rounds exactly as ``engine.assessment.percent``).
    """
    cal = calibration_of(model)
    if cal is None:
        return np.round(np.asarray(probabilities, dtype=np.float64) * 100.0, 2)
    return cal.scores(probabilities)


def anchors(policy: LanePolicy, kind: str) -> list[tuple[float, float]]:
    """(share of traffic, score) points from the lane policy: (1, 0), each lane's (share, threshold).

    Empty when the policy states no ``model_shares`` for the kind: its models keep raw scores.
    """
    lanes = policy.for_kind(kind)
    if not lanes.model_shares:
        return []
    return [(1.0, 0.0)] + sorted(
        ((s, lanes.thresholds[lane]) for lane, s in lanes.model_shares.items()), reverse=True
    )


def fit_calibration(
    unit_probabilities: np.ndarray, points: list[tuple[float, float]], *, unit: str, period: str
) -> Calibration:
    """Knots so that ``points`` (share, score) hold on these records' probabilities.

    Between two points the share falls geometrically with the score (straight in log share), and
    above the last point it reaches one record (1/n) at 100.
    """
    p = np.sort(np.asarray(unit_probabilities, dtype=np.float64))
    p = p[~np.isnan(p)]
    n = len(p)
    if n == 0:
        raise ModelError("no scored records to calibrate on")
    pts = sorted(points, key=lambda sp: sp[1])  # by score
    if pts[-1][1] < 100.0:
        pts.append((min(1.0 / n, pts[-1][0]), 100.0))
    scores = np.array([s for _, s in pts])
    log_shares = np.array([math.log(sh) for sh, _ in pts])
    whole = np.arange(101, dtype=np.float64)
    share = np.exp(np.interp(whole, scores, log_shares))
    share[0] = 1.0
    # Score k starts at the ceil(n * share)-th highest probability: that many records score >= k.
    from_top = np.clip(np.ceil(n * share - 1e-9).astype(np.int64), 1, n)
    raw = np.maximum.accumulate(p[n - from_top])
    return Calibration(tuple(float(v) for v in raw), tuple(float(v) for v in share), n, unit, period)


def unit_maxima(feats: pa.Table, probabilities: np.ndarray, kind: str) -> np.ndarray:
    """Per record (a declaration's highest goods item), the probability its score comes from."""
    if kind != "declaration":
        return np.asarray(probabilities, dtype=np.float64)
    for name in ("declaration_record_id", "parent_record_id", "declaration_id"):
        if name in feats.column_names and feats[name].null_count == 0:
            keys = feats[name]
            break
    else:
        return np.asarray(probabilities, dtype=np.float64)
    codes = np.asarray(pc.dictionary_encode(keys).combine_chunks().indices.to_numpy(), dtype=np.int64)
    out = np.full(int(codes.max()) + 1 if codes.size else 0, -np.inf)
    np.maximum.at(out, codes, np.asarray(probabilities, dtype=np.float64))
    return out


def calibrate_from_lake(
    settings: Settings,
    model: Any,
    ref: Any,
    *,
    since: date | datetime | None,
    until: date | datetime | None = None,
) -> Any:
    """Calibrate ``model`` on every record of its kind dated in [since, until) and return it.

    The records are scored as the engine scores them (features from ``ref``, the reference saved
    with the model: point-in-time features ranked the demo lake differently from what the engine
    then computes, and the stated shares did not hold where they are used) and the knots
    are stored in ``model.meta["calibration"]`` (so in its artefact). With fewer than
    :data:`MIN_UNITS` records in the window the whole lake up to ``until`` is used; with fewer
    still the model keeps raw probabilities (``meta["calibration"] = None``) and says why.
    """
    from sciti.risk.features import compute_batch, lake_records
    from sciti.risk.lanes import load_policy

    points = anchors(load_policy(settings.home), model.kind)
    if not points:
        model.meta["calibration"] = None
        model.meta["calibration_note"] = f"lanes.yaml states no model_shares for {model.kind}"
        return model
    rows = lake_records(settings, model.kind, since, until)
    if _units(rows, model.kind) < MIN_UNITS and since is not None:
        rows, since = lake_records(settings, model.kind, None, until), None
    units = _units(rows, model.kind)
    if units < MIN_UNITS:
        model.meta["calibration"] = None
        model.meta["calibration_note"] = f"only {units} records to calibrate on (at least {MIN_UNITS})"
        return model
    feats = compute_batch(model.kind, rows, ref)  # as the engine will: the reference saved with the model
    probs = unit_maxima(feats, model.score(feats), model.kind)
    dates = [d for d in feats["record_date"].to_pylist() if d is not None] if feats.num_rows else []
    first, last = (min(dates), max(dates)) if dates else (since, until)
    cal = fit_calibration(
        probs,
        points,
        unit=UNIT_WORDS.get(model.kind, model.kind.replace("_", " ") + "s"),
        period=f"{first} to {last}",
    )
    model.meta["calibration"] = cal.to_meta()
    return model


def _units(rows: pa.Table, kind: str) -> int:
    if kind == "declaration" and "declaration_id" in rows.column_names:
        return int(pc.count_distinct(rows["declaration_id"]).as_py())
    return rows.num_rows


__all__ = [
    "Calibration",
    "calibrate_from_lake",
    "calibration_of",
    "fit_calibration",
    "model_scores",
    "unit_maxima",
]
