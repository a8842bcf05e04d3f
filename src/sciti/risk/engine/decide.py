"""From numbers to a decision with its reasons: shared by the real-time and the batch path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sciti.risk.engine.assessment import Assessment, FactorOut, combine, percent
from sciti.risk.engine.ruleset import RuleHit
from sciti.risk.engine.subjects import office_of
from sciti.risk.lanes import more_severe

if TYPE_CHECKING:
    from sciti.risk.engine.assessor import Assessor


@dataclass
class RowResult:
    """One scored row (a goods item, or the whole record for other kinds)."""

    row: dict[str, Any]
    rule_score: float
    model_score: float | None
    direct_lane: str | None
    hits: list[RuleHit] = field(default_factory=list)

    @property
    def score(self) -> float:
        return combine(self.rule_score, self.model_score)


def factors_of(factors: list[Any]) -> list[FactorOut]:
    """Model factors (contract 2 ``Factor``) as plain values an answer can carry."""
    out = []
    for f in factors:
        value = f.value
        if value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        out.append(FactorOut(str(f.feature), value, round(float(f.contribution), 4), str(f.text)))
    return out


def unknown_codes(row: dict[str, Any]) -> list[str]:
    value = row.get("unknown_codes")
    if not value:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def hit_text(hit: RuleHit) -> str:
    effect = f"lane {hit.lane}" if hit.lane else f"+{hit.weight:g}"
    return f"{hit.reason} (rule {hit.rule_id} v{hit.version}, {effect})"


def model_line(
    kind: str, version: str | None, model_score: float | None, error: str | None, calibration: Any = None
) -> str:
    """The model's reason line; with a calibrated model it says what the score means in traffic."""
    if version is None:
        why = f": {error}" if error else ""
        return f"No model for {kind}{why}; scored with rules only"
    whole = f"{model_score or 0.0:.0f}"
    line = f"Model {version} gives {whole} out of 100"
    if calibration is not None:
        line += f": {calibration.share_text(int(whole))}"
    return line


def calibration_of(model: Any) -> Any:
    """The model's score calibration (models/calibrate.py), None without a model or calibration."""
    if model is None or not (getattr(model, "meta", None) or {}).get("calibration"):
        return None
    from sciti.risk.models.calibrate import calibration_of as of_model

    return of_model(model)


def model_scores(model: Any, probabilities: Any) -> Any:
    """0-100 model scores for both paths: calibrated when the model carries a calibration, else 100 x p."""
    if calibration_of(model) is None:
        return percent(probabilities)
    from sciti.risk.models.calibrate import model_scores as scores

    return scores(model, probabilities)


def decide(
    assessor: Assessor,
    kind: str,
    *,
    record_id: str,
    ref: str,
    results: list[RowResult],
    top: int,
    factors: list[FactorOut],
    assessed_at: datetime,
    assessment_id: str,
    path: str,
) -> Assessment:
    """The assessment of one record from its scored rows (``top`` = index of the highest score)."""
    p = assessor.kind_parts(kind)
    policy = assessor.policy
    best = results[top]
    is_decl = kind == "declaration"
    reasons: list[str] = []
    rule_ids: list[str] = []
    unknown: list[str] = []
    direct: str | None = None
    for r in results:
        prefix = f"Item {r.row.get('item_number')}: " if is_decl else ""
        for hit in r.hits:
            reasons.append(prefix + hit_text(hit))
            if hit.rule_id not in rule_ids:
                rule_ids.append(hit.rule_id)
        for name in unknown_codes(r.row):
            reasons.append(f"{prefix}Unknown code in {name} ({r.row.get(name)!s}): scored as unknown")
            if name not in unknown:
                unknown.append(name)
        if r.direct_lane:
            direct = r.direct_lane if direct is None else more_severe(direct, r.direct_lane)
    # The record's model score is its items' highest; the model line names that item (the first of
    # equal scores, items in order), so the line and ``model_score`` say the same number. The
    # factors explain the item with the highest overall score (``top``), and name it.
    scored = [i for i, r in enumerate(results) if r.model_score is not None]
    by_model = max(scored, key=lambda i: cast(float, results[i].model_score)) if scored else top
    model_score = results[by_model].model_score
    several = is_decl and len(results) > 1
    model_prefix = f"Item {results[by_model].row.get('item_number')}: " if several else ""
    top_prefix = f"Item {best.row.get('item_number')}: " if several else ""
    line = model_line(kind, p.model_version, model_score, p.model_error, calibration_of(p.model))
    reasons.append(model_prefix + line)
    reasons.extend(top_prefix + f.text for f in factors)
    score = best.score
    risk_lane = policy.lane(kind, score)
    if direct:
        risk_lane = more_severe(risk_lane, direct)
    sampled = policy.in_sample(record_id)
    lane = risk_lane
    if sampled:
        lane = more_severe(risk_lane, policy.sample_lane)
        reasons.append(f"Selected by the random compliance sample ({policy.sample_share:.1%} of records)")
    office = office_of(kind, best.row)
    items = []
    if is_decl and len(results) > 1:
        items = [
            {
                "item_number": r.row.get("item_number"),
                "record_id": r.row.get("record_id"),
                "score": r.score,
                "rule_ids": [h.rule_id for h in r.hits],
            }
            for r in results
        ]
    return Assessment(
        assessment_id=assessment_id,
        kind=kind,
        record_id=record_id,
        subject_ref=ref,
        office_code=office,
        score=score,
        rule_score=max(r.rule_score for r in results),
        model_score=model_score,
        risk_lane=risk_lane,
        lane=lane,
        sampled=sampled,
        reasons=reasons,
        rule_ids=rule_ids,
        model_version=p.model_version,
        factors=factors,
        unknown_codes=unknown,
        rules_version=p.rules.stamp,
        reference_snapshot=assessor.reference_snapshot,
        assessed_at=assessed_at,
        path=path,
        items=items,
    )


__all__ = [
    "RowResult",
    "calibration_of",
    "decide",
    "factors_of",
    "hit_text",
    "model_line",
    "model_scores",
    "unknown_codes",
]
