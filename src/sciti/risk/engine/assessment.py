"""What an assessment is, how its score is made, and how it is stored in ``risk.assessments``.

Score (0-100), shown part by part in every answer:

* ``rule_score`` = sum of the weights of the weight rules that hit, capped at 100;
* ``model_score`` = 100 x the champion model's probability (absent without a model);
* ``score`` = the higher of the two. A lane rule that hits sets its lane directly; the record
  gets the most severe of that lane and the lane its score reaches (lanes.yaml), so a rule can
  raise a lane but never lower one.

The compliance sample and the red-lane capacity then give ``lane`` (what the officer sees);
``risk_lane`` keeps the lane the risk alone gave, which is what single and batch answers share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from sciti.risk.engine.reasons import said_text


@dataclass(frozen=True)
class FactorOut:
    feature: str
    value: Any
    contribution: float
    text: str
    # A smoothed rate's counts (inspections, frauds, ...: reasons.factor), beside its keys in
    # ``factors`` as in its code, so a page says them in its reader's language (decision 0115).
    evidence: dict[str, Any] | None = None
    # The template that made ``text`` and the record's values it names (``template``, ``named``:
    # reasons.factor), so a page says the whole sentence in its reader's language (decision 0118).
    said: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "text": self.text,
        }
        return out | (self.evidence or {}) | (self.said or {})


@dataclass
class Assessment:
    assessment_id: str
    kind: str
    record_id: str
    subject_ref: str
    office_code: str | None
    score: float
    rule_score: float
    model_score: float | None
    risk_lane: str
    lane: str
    sampled: bool
    reasons: list[str]
    rule_ids: list[str]
    model_version: str | None
    factors: list[FactorOut]
    unknown_codes: list[str]
    rules_version: str
    reference_snapshot: str | None
    assessed_at: datetime
    path: str = "api"  # api | batch
    items: list[dict[str, Any]] = field(default_factory=list)  # per goods item: number, score, rules
    # Each reason as its code and values, line for line (engine/reasons.py): what a page says in
    # its reader's language. Empty only in an assessment made before codes were kept.
    reason_codes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.lane != "green" or self.sampled

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data (built field by field: ``asdict`` deep-copies, slowly)."""
        out = {name: getattr(self, name) for name in _FIELDS}
        out["factors"] = [f.to_dict() for f in self.factors]
        out["assessed_at"] = self.assessed_at.isoformat()
        return out

    def to_row(self) -> dict[str, Any]:
        """One row of ``risk.assessments``."""
        row = {name: getattr(self, name) for name in ROW_FIELDS}
        row["factors"] = json.dumps([f.to_dict() for f in self.factors], default=str)
        row["items"] = json.dumps(self.items, default=str)
        row["reason_codes"] = [said_text(c) for c in self.reason_codes]
        return row


_FIELDS = tuple(f.name for f in fields(Assessment))
ASSESSMENTS_TABLE = "risk.assessments"
ASSESSMENTS_SCHEMA = pa.schema(
    [
        pa.field("assessment_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("subject_ref", pa.string()),
        pa.field("office_code", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("rule_score", pa.float64()),
        pa.field("model_score", pa.float64()),
        pa.field("risk_lane", pa.string()),
        pa.field("lane", pa.string()),
        pa.field("sampled", pa.bool_()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("rule_ids", pa.list_(pa.string())),
        pa.field("model_version", pa.string()),
        pa.field("factors", pa.string()),  # JSON list of {feature, value, contribution, text}
        pa.field("unknown_codes", pa.list_(pa.string())),
        pa.field("rules_version", pa.string()),
        pa.field("reference_snapshot", pa.string()),
        pa.field("assessed_at", pa.timestamp("us", tz="UTC")),
        pa.field("path", pa.string()),
        pa.field("items", pa.string()),  # JSON list of per-item results (declarations)
        # One JSON object per reason, line for line ({"code": ..., values}: engine/reasons.py);
        # NULL in rows stored before codes were kept (their reasons are English only).
        pa.field("reason_codes", pa.list_(pa.string())),
    ]
)
ROW_FIELDS = tuple(f.name for f in ASSESSMENTS_SCHEMA)


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ASSESSMENTS_SCHEMA)


def combine(rule_score: float, model_score: float | None) -> float:
    """The record's score from its parts (see the module docstring)."""
    return float(np.round(max(min(rule_score, 100.0), model_score or 0.0), 2))


def combine_many(rule_scores: np.ndarray, model_scores: np.ndarray) -> np.ndarray:
    """Vectorised :func:`combine` (``model_scores`` NaN where absent); numpy rounds both the same way."""
    return np.round(np.maximum(np.minimum(rule_scores, 100.0), np.nan_to_num(model_scores, nan=0.0)), 2)


def percent(probabilities: np.ndarray) -> np.ndarray:
    """Model probabilities as 0-100 scores with two decimals (one rounding for both paths)."""
    return np.round(np.asarray(probabilities, dtype=np.float64) * 100.0, 2)


__all__ = [
    "ASSESSMENTS_SCHEMA",
    "ASSESSMENTS_TABLE",
    "Assessment",
    "FactorOut",
    "combine",
    "combine_many",
    "percent",
    "rows_to_table",
]
