"""Batch assessment: a whole table at once, the numbers vectorised, the words only where needed.

Features come from ``features.compute_batch``, rules are evaluated on Arrow columns (see
``arrowrules``), the model scores the whole matrix in a second thread while the rules run. Records
with a rule hit, an unknown code, several goods items or a model explanation go through the same
``decide`` as a single record; every other record is plain (score, lane and the model line) and is
written column-wise, which is where the speed is.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model import make_record_id
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, combine_many
from sciti.risk.engine.batch_words import fill_rich, fill_single, item_numbers, rule_words
from sciti.risk.engine.columns import Lanes, LazyTexts, Sparse, all_distinct, assessment_ids, batch_prefix
from sciti.risk.engine.decide import (
    calibration_of,
    model_said,
    model_scores,
)
from sciti.risk.engine.metrics import ASSESSED
from sciti.risk.engine.reasons import english, said_text, sample
from sciti.risk.engine.said import said_table
from sciti.risk.engine.subjects import REALTIME_SOURCE, office_column, spec
from sciti.risk.lanes import LANES, SEVERITY

if TYPE_CHECKING:
    from sciti.risk.engine.assessor import Assessor

_LANE_ARRAY = np.array(LANES, dtype=object)


def _unit_ids(kind: str, feats: pa.Table) -> pa.Array | pa.ChunkedArray:
    """The assessment's record id per row: the declaration's for goods items, else the row's own."""
    if kind != "declaration":
        return pc.cast(feats["record_id"], pa.string())
    for name in ("declaration_record_id", "parent_record_id"):  # lake rows carry the header's id
        if name in feats.column_names and feats[name].null_count == 0:
            return pc.cast(feats[name], pa.string())
    sources = feats["source"].to_pylist() if "source" in feats.column_names else [None] * feats.num_rows
    ids = feats["declaration_id"].to_pylist()
    versions = feats["version"].to_pylist()
    made = [
        make_record_id("declaration", s or REALTIME_SOURCE, d, v)
        for s, d, v in zip(sources, ids, versions, strict=True)
    ]
    return pa.array(made, pa.string())


def _refs(kind: str, feats: pa.Table) -> pa.Array | pa.ChunkedArray:
    cols = [pc.fill_null(pc.cast(feats[f], pa.string()), "") for f in spec(kind).ref_fields]
    if len(cols) == 1:
        return cols[0]
    return pc.binary_join_element_wise(*cols, "/")


def _has_unknown(feats: pa.Table) -> np.ndarray:
    if "unknown_codes" not in feats.column_names:
        return np.zeros(feats.num_rows, dtype=bool)
    col = feats["unknown_codes"]
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = pc.fill_null(pc.list_value_length(col), 0)
        return np.asarray(lengths.to_numpy(zero_copy_only=False)) > 0
    return np.asarray(pc.fill_null(pc.not_equal(col, ""), False).to_numpy(zero_copy_only=False), dtype=bool)


def _units(
    unit_of_row: list[str], score_arr: np.ndarray, numbers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row, top row of each unit, its score, rows per unit); units in order of appearance.

    The top row is the highest score; on equal scores the lowest item number (``numbers``),
    then the earliest row: the item real time names, whatever order the lake's rows come in."""
    n = len(unit_of_row)
    if numbers is None:
        numbers = np.zeros(n, dtype=np.float64)
    _, first, inverse, counts = np.unique(
        np.asarray(unit_of_row, dtype=object), return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unit = rank[inverse]
    m = len(order)
    top = np.full(m, -1)
    best = np.full(m, -np.inf)
    for i in np.lexsort((np.arange(n), numbers, -score_arr)):  # highest score, lowest item
        if top[unit[i]] < 0:
            top[unit[i]] = i
            best[unit[i]] = score_arr[i]
    return unit, top, best, counts[order]


def _model_lines(
    kind: str, version: str | None, error: str | None, scores: np.ndarray, calibration: Any
) -> tuple[pa.Array, pa.Array]:
    """The model line per record and its code: each whole score's made once, then looked up.

    decide writes the whole score as ``f"{score:.0f}"`` (round half to even, as ``np.rint``), and
    the line depends on nothing else, so the 101 possible lines are all there is to format.
    """
    if version is None:
        said = model_said(kind, None, None, error)
        return (
            pa.repeat(pa.scalar(english(said), pa.string()), len(scores)),
            pa.repeat(pa.scalar(said_text(said), pa.string()), len(scores)),
        )
    made = [model_said(kind, version, float(k), error, calibration) for k in range(101)]
    whole = pa.array(np.clip(np.rint(np.nan_to_num(scores, nan=0.0)), 0, 100).astype(np.int32))
    # Dictionaries: no string copied per record.
    lines = pa.DictionaryArray.from_arrays(whole, pa.array([english(c) for c in made], pa.string()))
    codes = pa.DictionaryArray.from_arrays(whole, pa.array([said_text(c) for c in made], pa.string()))
    return lines, codes


def _model_arr(model: Any, feats: pa.Table) -> np.ndarray:
    """The model's 0-100 score per row (a whole table: LightGBM on every core)."""
    booster = getattr(model, "booster", None)
    probs = booster.predict(model.matrix(feats)) if booster is not None else model.score(feats)
    return np.asarray(model_scores(model, probs), dtype=np.float64)


def assess_table(
    assessor: Assessor, kind: str, table: pa.Table, *, explain: str = "flagged", with_features: bool = False
) -> pa.Table:
    # Millions of small lists and strings are made here and none is garbage: the cyclic collector
    # would only rescan them again and again.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _assess_table(assessor, kind, table, explain=explain, with_features=with_features)
    finally:
        if enabled:
            gc.enable()


def _assess_table(
    assessor: Assessor, kind: str, table: pa.Table, *, explain: str, with_features: bool
) -> pa.Table:
    p = assessor.kind_parts(kind)
    policy = assessor.policy
    at = datetime.now(UTC)
    if table.num_rows == 0:
        return ASSESSMENTS_SCHEMA.empty_table()
    feats = table if with_features else parts.compute_batch(kind, table, assessor.reference)
    n = feats.num_rows
    # The model runs in another thread while this one evaluates the rules (and a third hashes the sample):
    # LightGBM and Arrow release the GIL, and the single-threaded rule work would otherwise leave
    # a core idle. LightGBM keeps its own thread count (all cores), as in the anchor.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sciti-batch") as pool:
        scored = pool.submit(_model_arr, p.model, feats) if p.model is not None else None
        unit_of_row = _unit_ids(kind, feats)
        one_per_row = all_distinct(unit_of_row)
        # The sample's hashes (DuckDB, GIL released) do not depend on scores when units are rows.
        sample_job = pool.submit(policy.in_sample_many, unit_of_row) if one_per_row else None
        hits = p.rules.hit_matrix(feats)
        rule_scores, direct = np.zeros(n), np.full(n, -1, dtype=np.int64)
        row_hit = hits.any(axis=1)
        unknown_rows = _has_unknown(feats)
        # Few rows hit anything or have an unknown code: work on those only.
        word_rows = np.flatnonzero(row_hit | unknown_rows)
        word_hits = hits[word_rows]
        if word_rows.size:
            # (row, rule) of each hit, row by row and in rule order: the weights add up in the
            # order the single-record path's sum() adds them.
            hit_at, hit_rule = np.nonzero(word_hits)
            summed = np.bincount(hit_at, weights=p.rules.weights[hit_rule], minlength=word_rows.size)
            rule_scores[word_rows] = np.minimum(summed, 100.0)
            most = np.full(word_rows.size, -1, dtype=np.int64)
            np.maximum.at(most, hit_at, p.rules.severity[hit_rule])
            direct[word_rows] = most
        refs_all = _refs(kind, feats)
        offices = office_column(kind, feats)
        said_feats = said_table(feats)  # what the words read: the values as real time has them
        # While the model runs: the words of the rule hits and unknown codes (Python work that
        # needs no score), for every row that has any.
        words = None
        if one_per_row:
            words = rule_words(assessor, kind, said_feats, word_hits, unknown_rows, word_rows)
        model_arr = scored.result() if scored is not None else np.full(n, np.nan)
        early_sample = sample_job.result() if sample_job is not None else None
    score_arr = combine_many(rule_scores, model_arr)

    # Units: one per declaration (its items), else one per row. top = row with the highest score.
    # Identifiers, references and offices stay Arrow columns: only decide's few units read them.
    if one_per_row:  # one row per record (all but multi-item declarations)
        m, unit, top, best, items_per_unit = n, np.arange(n), np.arange(n), score_arr, np.ones(n, np.int64)
        unit_direct = direct
        unit_ids = unit_of_row
    else:
        numbers = item_numbers(feats)
        unit, top, best, items_per_unit = _units(unit_of_row.to_pylist(), score_arr, numbers)
        m = len(top)
        unit_direct = np.full(m, -1)
        np.maximum.at(unit_direct, unit, direct)
        unit_ids = pc.take(unit_of_row, pa.array(top))
    sev = np.full(m, SEVERITY["green"], dtype=np.int64)
    for lane, threshold in sorted(policy.for_kind(kind).thresholds.items(), key=lambda kv: SEVERITY[kv[0]]):
        sev[best >= threshold] = SEVERITY[lane]  # as policy.lanes: more severe lanes overwrite
    sev = np.maximum(sev, unit_direct)
    sampled = early_sample if early_sample is not None else policy.in_sample_many(unit_ids)
    lane_sev = np.where(sampled, np.maximum(sev, SEVERITY[policy.sample_lane]), sev)
    flagged = (sev != SEVERITY["green"]) | sampled

    row_rich = row_hit | unknown_rows
    if m == n:
        unit_rich = row_rich.copy()
    else:
        unit_rich = np.zeros(m, dtype=bool)
        np.logical_or.at(unit_rich, unit, row_rich)
    multi = np.zeros(m, dtype=bool)
    if kind == "declaration":
        multi = items_per_unit > 1  # several goods items: reasons name the item, through decide
    explain_units = np.zeros(m, dtype=bool)
    if p.model is not None and explain != "none":
        explain_units = np.ones(m, dtype=bool) if explain == "all" else flagged
    unit_rich |= explain_units | multi

    ids = assessment_ids(batch_prefix(at), m)
    top_idx = pa.array(top)
    top_model = model_arr[top]
    model_col: Any = [None] * m if p.model is None else top_model
    lines, line_codes = _model_lines(kind, p.model_version, p.model_error, top_model, calibration_of(p.model))
    line_of, code_of = LazyTexts(lines), LazyTexts(line_codes)
    cols: dict[str, Any] = {
        "assessment_id": ids,
        "kind": [kind] * m,
        "record_id": unit_ids,
        "subject_ref": pc.take(refs_all, top_idx) if m != n else refs_all,
        "office_code": pc.take(offices, top_idx) if m != n else offices,
        "score": best.astype(np.float64),  # numpy columns go to Arrow without Python floats
        "rule_score": rule_scores[top],
        "model_score": model_col,
        "risk_lane": Lanes(sev.copy()),  # decide may set a unit's lane
        "lane": Lanes(lane_sev.copy()),
        "sampled": sampled.copy(),
        "reasons": Sparse(m, lambda u: [line_of[u]], lines),
        "rule_ids": Sparse(m, lambda u: []),
        "model_version": [p.model_version] * m,
        "factors": Sparse(m, lambda u: "[]"),
        "unknown_codes": Sparse(m, lambda u: []),
        "rules_version": [p.rules.stamp] * m,
        "reference_snapshot": [assessor.reference_snapshot] * m,
        "assessed_at": [at] * m,
        "path": ["batch"] * m,
        "items": Sparse(m, lambda u: "[]"),
        "reason_codes": Sparse(m, lambda u: [code_of[u]], line_codes),  # line for line with reasons
    }
    single = np.flatnonzero(unit_rich & ~multi)
    if single.size:  # one row per record: its words column by column, as decide would write them
        if words is None:
            words = rule_words(assessor, kind, said_feats, hits[top[single]], unknown_rows, top[single])
        fill_single(assessor, kind, said_feats, words, top, single, explain_units, cols)
    sample_said = sample(policy.sample_share)
    in_sample = np.flatnonzero(sampled & ~multi)  # decide adds it itself for the multi-item ones
    for name, text in (("reasons", english(sample_said)), ("reason_codes", said_text(sample_said))):
        col = cols[name]  # the two columns have the same units materialised (fill_single)
        own = np.isin(in_sample, np.fromiter(col.own, dtype=np.int64, count=len(col.own)))
        for u in in_sample[own].tolist():
            col[u].append(text)
        col.add(in_sample[~own], pa.repeat(pa.scalar(text, pa.string()), int((~own).sum())), after=True)

    rich = np.flatnonzero(multi & unit_rich)
    if rich.size:
        fill_rich(
            assessor,
            kind,
            said_feats,
            hits,
            rule_scores,
            [None if np.isnan(v) else float(v) for v in model_arr.tolist()],
            direct,
            unit,
            top,
            rich,
            explain_units,
            cols,
        )
    counts = np.bincount(lane_sev, minlength=len(LANES))  # decide gives the rich units the same lanes
    for lane, count in zip(LANES, counts.tolist(), strict=True):
        if count:
            ASSESSED.labels(kind=kind, lane=lane, path="batch").inc(int(count))
    for name in ("kind", "model_version", "rules_version", "reference_snapshot", "assessed_at", "path"):
        cols[name] = pa.repeat(pa.scalar(cols[name][0], ASSESSMENTS_SCHEMA.field(name).type), m)
    for name in ("reasons", "rule_ids", "unknown_codes", "reason_codes"):
        cols[name] = cols[name].list_array()
    for name in ("factors", "items"):
        cols[name] = cols[name].text_array("[]")
    for name in ("risk_lane", "lane"):
        cols[name] = cols[name].arrow()
    return pa.table(cols, schema=ASSESSMENTS_SCHEMA)


__all__ = ["assess_table"]
