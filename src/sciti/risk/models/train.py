"""Training from the lake: labelled rows, point-in-time features, a time-based validation split.

Labels are inspection outcomes (std.inspection_results): only inspected records are used, since
an uninspected record's outcome is unknown. Those labels are biased towards what earlier targeting
already suspected, so the validation figures are reported twice: on every inspected record of the
validation period and on the random-inspection subset (``selection_reason = 'random'``), which is
the unbiased estimate.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.risk.errors import ModelError
from sciti.risk.evaluate import curves, metrics
from sciti.risk.features import build_reference, compute_batch, lake_records, save_reference
from sciti.risk.models.calibrate import calibrate_from_lake
from sciti.risk.models.fit import fit
from sciti.risk.models.registry import new_version_id, promote, register
from sciti.settings import Settings

LABELS = ("fraud", "critical")
VALID_SHARE = 0.2  # the most recent fifth of the labelled period validates
MIN_ROWS = 50


def labels_of(table: pa.Table, label: str) -> np.ndarray:
    if label == "fraud":
        arr = pc.fill_null(table["fraud"], False)
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    if label == "critical":
        arr = pc.fill_null(pc.equal(table["fraud_severity"], 2), False)
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
    raise ModelError(f"label {label!r} is not known", remedy=f"use one of: {', '.join(LABELS)}")


def time_split(table: pa.Table, share: float = VALID_SHARE) -> tuple[pa.Table, pa.Table, date]:
    """Rows before the cut date train; rows on or after it validate (cut at the (1-share) quantile)."""
    dates = sorted(d for d in table["record_date"].to_pylist() if d is not None)
    if not dates:
        raise ModelError("the labelled rows carry no dates", remedy="check acceptance_date in the lake")
    cut = dates[min(len(dates) - 1, int(len(dates) * (1 - share)))]
    if cut == dates[0]:  # one day only: fall back to the day after the first
        cut = dates[0] + timedelta(days=1)
    scalar = pa.scalar(cut, pa.date32())
    return (
        table.filter(pc.less(table["record_date"], scalar)),
        table.filter(pc.greater_equal(table["record_date"], scalar)),
        cut,
    )


def labelled_features(settings: Settings, kind: str, since=None, until=None) -> tuple[pa.Table, Any]:
    """Point-in-time features of the inspected records of ``kind`` in [since, until)."""
    if kind != "declaration":
        raise ModelError(
            f"models need inspection labels; for {kind!r} the lake has none linked yet",
            remedy="train a declaration model; other kinds are assessed by rules",
        )
    ref = build_reference(settings, as_of=_as_date(until) - timedelta(days=1) if until else None)
    rows = lake_records(settings, kind, since, until, labels=True)
    rows = rows.filter(pc.fill_null(rows["inspected"], False))
    if rows.num_rows < MIN_ROWS:
        raise ModelError(
            f"only {rows.num_rows} inspected {kind} records in the lake; at least {MIN_ROWS} are needed",
            remedy="ingest inspection results (std.inspection_results) or widen --since/--until",
        )
    return compute_batch(kind, rows, ref, point_in_time=True), ref


def by_source(feats: pa.Table, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Labelled rows and label rate per source system, largest first: what the analyst checks before
    promoting (on systems whose fields or fraud rates differ, a model can learn which system a
    record came from instead of fraud)."""
    if "source" not in feats.column_names:
        return {}
    sources = np.asarray(pc.fill_null(feats["source"], "unknown").to_pylist(), dtype=object)
    out = {}
    for src in sorted(set(sources.tolist()), key=lambda v: -int((sources == v).sum())):
        mask = sources == src
        out[str(src)] = {"rows": int(mask.sum()), "label_rate": round(float(y[mask].mean()), 4)}
    return out


MIXED_RATES = 0.10  # label rates of two sources this far apart: the model may learn the source
MIXED_MIN_ROWS = 100


def sources_differ(sources: dict[str, dict[str, float]]) -> bool:
    """True when the source systems a model learnt from differ in their label rates (by more than
    ``MIXED_RATES`` among those with ``MIXED_MIN_ROWS`` rows): it may have learnt the system."""
    rates = [s["label_rate"] for s in sources.values() if s["rows"] >= MIXED_MIN_ROWS]
    return len(rates) > 1 and max(rates) - min(rates) > MIXED_RATES


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


REAL_TIME_MAX_DEPTH = 8


def train(
    settings: Settings,
    kind: str,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    label: str = "fraud",
    params: dict[str, Any] | None = None,
    actor: str,
    promote_to: str | None = None,
) -> dict[str, Any]:
    """Train, validate on the latest period, register; returns the registry entry (with metrics)."""
    feats, ref = labelled_features(settings, kind, since, until)
    y_all = labels_of(feats, label)
    if y_all.sum() == 0:
        raise ModelError(
            f"no {label} labels among the inspected records", remedy="check the inspection results"
        )
    # Registered models score in real time with an explanation per answer: depth-limited trees keep
    # TreeSHAP cheap (its cost grows with depth squared: 5.5 ms per record unlimited, 1.9 ms at 8).
    params = {"max_depth": REAL_TIME_MAX_DEPTH, **(params or {})}
    train_part, valid_part, cut = time_split(feats)
    y_tr, y_va = labels_of(train_part, label), labels_of(valid_part, label)
    probe = fit(kind, train_part, y_tr, label=label, params=params, valid=(valid_part, y_va))
    report: dict[str, Any] = {"split_date": cut.isoformat(), "train_rows": train_part.num_rows}
    report["sources"] = by_source(feats, y_all)
    if valid_part.num_rows:
        s = probe.score(valid_part)
        rev = np.asarray(
            pc.fill_null(valid_part["revenue_raised"], 0.0).to_numpy(zero_copy_only=False), float
        )
        report["validation"] = metrics(y_va, s, rev, bootstrap=100)
        report["validation"]["curves"] = curves(y_va, s)  # drawn on the models page
        random = np.asarray(
            pc.fill_null(pc.equal(valid_part["selection_reason"], "random"), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        if random.sum():
            report["validation_random"] = metrics(y_va[random], s[random], rev[random], bootstrap=100)
            report["validation_random"]["curves"] = curves(y_va[random], s[random])
    # The registered model learns from every labelled row, with the tree count validation chose.
    rounds = int(probe.meta.get("best_iteration") or 0) or None
    final_params = {**(params or {}), **({"num_boost_round": rounds} if rounds else {})}
    model = fit(kind, feats, y_all, label=label, params=final_params, version=new_version_id(kind, label))
    calibrate_from_lake(settings, model, ref, since=cut, until=until)  # lane shares: models/calibrate.py
    save_reference(settings, ref)
    entry = register(
        settings,
        model,
        metrics=report,
        snapshot_id=ref.snapshot_id,
        lake_snapshots=ref.snapshots,
        since=_as_date(since).isoformat() if since else None,
        until=_as_date(until).isoformat() if until else None,
        rows=feats.num_rows,
        actor=actor,
    )
    if promote_to:
        entry = promote(settings, entry["version"], promote_to, actor=actor, reason="promoted at training")
    return entry
