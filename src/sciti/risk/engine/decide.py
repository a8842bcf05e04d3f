"""From numbers to a decision with its reasons: shared by the real-time and the batch path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sciti.risk.engine import reasons as rc
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
        found = getattr(f, "evidence", None)  # a smoothed rate's counts (decision 0115)
        evidence = found.said() if found is not None else None
        said = getattr(f, "said", None)  # its template and the values it names (decision 0118)
        out.append(
            FactorOut(str(f.feature), value, round(float(f.contribution), 4), str(f.text), evidence, said)
        )
    return out


def factor_said(f: FactorOut, item: dict[str, Any] = rc.NO_ITEM) -> dict[str, Any]:
    """A model factor's line as its code (its sentence is the model's own, in ``f.text``)."""
    return rc.factor(f.feature, f.value, f.contribution, item, f.evidence, f.said)


def unknown_codes(row: dict[str, Any]) -> list[str]:
    value = row.get("unknown_codes")
    if not value:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def hit_said(hit: RuleHit, item: dict[str, Any] = rc.NO_ITEM) -> dict[str, Any]:
    """A rule hit's line as its code (see ``reasons``)."""
    return rc.rule_hit(hit.rule_id, hit.version, hit.weight, hit.lane, hit.reason, item)


def hit_text(hit: RuleHit) -> str:
    return rc.english(hit_said(hit))


def whole_score(model_score: float | None) -> int:
    """The model score as its line says it: rounded half to even (``np.rint`` in batch)."""
    return int(f"{model_score or 0.0:.0f}")


def model_said(
    kind: str,
    version: str | None,
    model_score: float | None,
    error: str | None,
    calibration: Any = None,
    item: dict[str, Any] = rc.NO_ITEM,
) -> dict[str, Any]:
    """The model's line as its code: the score and, calibrated, what it means in traffic; or why
    there is no model."""
    return rc.model(kind, version, whole_score(model_score), error, calibration, item)


def model_line(
    kind: str, version: str | None, model_score: float | None, error: str | None, calibration: Any = None
) -> str:
    """The model's reason line; with a calibrated model it says what the score means in traffic."""
    return rc.english(model_said(kind, version, model_score, error, calibration))


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
    # Each line twice: its code (``reasons``) and the English sentence made from it.
    codes: list[dict[str, Any]] = []
    rule_ids: list[str] = []
    unknown: list[str] = []
    direct: str | None = None
    for r in results:
        item = rc.item_of(r.row.get("item_number")) if is_decl else rc.NO_ITEM
        for hit in r.hits:
            codes.append(hit_said(hit, item))
            if hit.rule_id not in rule_ids:
                rule_ids.append(hit.rule_id)
        for name in unknown_codes(r.row):
            codes.append(rc.unknown_code(name, r.row.get(name), item))
            if name not in unknown:
                unknown.append(name)
        if r.direct_lane:
            direct = r.direct_lane if direct is None else more_severe(direct, r.direct_lane)
    reasons = [rc.english(c) for c in codes]
    # The record's model score is its items' highest; the model line names that item (the first of
    # equal scores, items in order), so the line and ``model_score`` say the same number. The
    # factors explain the item with the highest overall score (``top``), and name it.
    scored = [i for i, r in enumerate(results) if r.model_score is not None]
    by_model = max(scored, key=lambda i: cast(float, results[i].model_score)) if scored else top
    model_score = results[by_model].model_score
    several = is_decl and len(results) > 1
    model_item = rc.item_of(results[by_model].row.get("item_number")) if several else rc.NO_ITEM
    top_item = rc.item_of(best.row.get("item_number")) if several else rc.NO_ITEM
    line = model_said(kind, p.model_version, model_score, p.model_error, calibration_of(p.model), model_item)
    codes.append(line)
    reasons.append(rc.english(line))
    for f in factors:
        codes.append(factor_said(f, top_item))
        reasons.append(rc.english(codes[-1], f.text))
    score = best.score
    risk_lane = policy.lane(kind, score)
    if direct:
        risk_lane = more_severe(risk_lane, direct)
    sampled = policy.in_sample(record_id)
    lane = risk_lane
    if sampled:
        lane = more_severe(risk_lane, policy.sample_lane)
        codes.append(rc.sample(policy.sample_share))
        reasons.append(rc.english(codes[-1]))
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
        reason_codes=codes,
    )


__all__ = [
    "RowResult",
    "calibration_of",
    "decide",
    "factor_said",
    "factors_of",
    "hit_said",
    "hit_text",
    "model_line",
    "model_said",
    "model_scores",
    "unknown_codes",
    "whole_score",
]
