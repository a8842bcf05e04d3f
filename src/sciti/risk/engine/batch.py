"""Batch assessment: a whole table at once, the numbers vectorised, the words only where needed.

Features come from ``features.compute_batch``, every rule is a column of one DuckDB statement,
the model scores the whole matrix. Records with a rule hit, an unknown code, several goods items
or a model explanation go through the same ``decide`` as a single record; every other record is
plain (score, lane and the model line) and is written column-wise, which is where the speed is.
"""

from __future__ import annotations

import gc
import json
import os
import string
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model import make_record_id
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, combine_many, percent
from sciti.risk.engine.decide import RowResult, decide, factors_of, model_line, unknown_codes
from sciti.risk.engine.metrics import ASSESSED
from sciti.risk.engine.subjects import REALTIME_SOURCE, spec
from sciti.risk.lanes import LANES, SEVERITY

if TYPE_CHECKING:
    from sciti.risk.engine.assessor import Assessor

_LANE_ARRAY = np.array(LANES, dtype=object)


def _unit_ids(kind: str, feats: pa.Table) -> list[str]:
    """The assessment's record id per row: the declaration's for goods items, else the row's own."""
    if kind != "declaration":
        return feats["record_id"].to_pylist()
    for name in ("declaration_record_id", "parent_record_id"):  # lake rows carry the header's id
        if name in feats.column_names and feats[name].null_count == 0:
            return feats[name].to_pylist()
    sources = feats["source"].to_pylist() if "source" in feats.column_names else [None] * feats.num_rows
    ids = feats["declaration_id"].to_pylist()
    versions = feats["version"].to_pylist()
    return [
        make_record_id("declaration", s or REALTIME_SOURCE, d, v)
        for s, d, v in zip(sources, ids, versions, strict=True)
    ]


def _refs(kind: str, feats: pa.Table) -> list[str]:
    cols = [pc.fill_null(pc.cast(feats[f], pa.string()), "") for f in spec(kind).ref_fields]
    if len(cols) == 1:
        return cols[0].to_pylist()
    return pc.binary_join_element_wise(*cols, "/").to_pylist()


def _has_unknown(feats: pa.Table) -> np.ndarray:
    if "unknown_codes" not in feats.column_names:
        return np.zeros(feats.num_rows, dtype=bool)
    col = feats["unknown_codes"]
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = pc.fill_null(pc.list_value_length(col), 0)
        return np.asarray(lengths.to_numpy(zero_copy_only=False)) > 0
    return np.asarray(pc.fill_null(pc.not_equal(col, ""), False).to_numpy(zero_copy_only=False), dtype=bool)


def _units(
    unit_of_row: list[str], score_arr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row, top row of each unit, its score, rows per unit); units in order of appearance."""
    n = len(unit_of_row)
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
    for i in np.lexsort((np.arange(n), -score_arr)):  # highest score first, earliest row on ties
        if top[unit[i]] < 0:
            top[unit[i]] = i
            best[unit[i]] = score_arr[i]
    return unit, top, best, counts[order]


def _model_lines(kind: str, version: str | None, error: str | None, scores: list[Any]) -> list[list[str]]:
    """``[model_line(...)]`` per record, built column-wise (the same text, see decide.model_line)."""
    if version is None:
        line = model_line(kind, None, None, error)
        return [[line] for _ in scores]
    whole = np.rint(np.asarray([s or 0.0 for s in scores], dtype=np.float64)).astype(np.int64)
    texts = pc.binary_join_element_wise(
        f"Model {version} gives ", pc.cast(pa.array(whole), pa.string()), " out of 100", ""
    ).to_pylist()
    return [[t] for t in texts]


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
    hits = p.rules.hit_matrix(feats)
    rule_scores, direct = np.zeros(n), np.full(n, -1, dtype=np.int64)
    row_hit = hits.any(axis=1)
    hit_rows = np.flatnonzero(row_hit)  # few rows hit anything: work on those only
    if hit_rows.size:
        sub = hits[hit_rows]
        rule_scores[hit_rows] = np.minimum(sub.astype(np.float64) @ p.rules.weights, 100.0)
        direct[hit_rows] = np.where(sub, p.rules.severity, -1).max(axis=1)
    model_arr = np.full(n, np.nan)
    if p.model is not None:
        booster = getattr(p.model, "booster", None)  # a whole table: LightGBM on every core
        probs = booster.predict(p.model.matrix(feats)) if booster is not None else p.model.score(feats)
        model_arr = percent(probs)
    score_arr = combine_many(rule_scores, model_arr)

    # Units: one per declaration (its items), else one per row. top = row with the highest score.
    unit_of_row = _unit_ids(kind, feats)
    if len(set(unit_of_row)) == n:  # one row per record (every kind but multi-item declarations)
        m, unit, top, best, items_per_unit = n, np.arange(n), np.arange(n), score_arr, np.ones(n, np.int64)
        unit_direct = direct
    else:
        unit, top, best, items_per_unit = _units(unit_of_row, score_arr)
        m = len(top)
        unit_direct = np.full(m, -1)
        np.maximum.at(unit_direct, unit, direct)
    unit_ids = [unit_of_row[i] for i in top] if m != n else unit_of_row
    sev = np.full(m, SEVERITY["green"], dtype=np.int64)
    for lane, threshold in sorted(policy.for_kind(kind).thresholds.items(), key=lambda kv: SEVERITY[kv[0]]):
        sev[best >= threshold] = SEVERITY[lane]  # as policy.lanes: more severe lanes overwrite
    sev = np.maximum(sev, unit_direct)
    risk = _LANE_ARRAY[sev]
    sampled = policy.in_sample_many(unit_ids)
    flagged = (risk != "green") | sampled

    row_rich = row_hit | _has_unknown(feats)
    unit_rich = np.zeros(m, dtype=bool)
    np.logical_or.at(unit_rich, unit, row_rich)
    multi = np.zeros(m, dtype=bool)
    if kind == "declaration":
        multi = items_per_unit > 1  # several goods items: reasons name the item, through decide
    explain_units = np.zeros(m, dtype=bool)
    if p.model is not None and explain != "none":
        explain_units = np.ones(m, dtype=bool) if explain == "all" else flagged
    unit_rich |= explain_units | multi

    batch_ms = int(at.timestamp() * 1000)
    salt = os.urandom(6).hex()
    prefix = f"{batch_ms:012x}{salt}"
    ids = [f"{prefix}{i:08x}" for i in range(m)]
    refs_all = _refs(kind, feats)
    office_field = spec(kind).office_field
    offices = (
        pc.cast(feats[office_field], pa.string()).to_pylist()
        if office_field and office_field in feats.column_names
        else [None] * n
    )
    top_model = model_arr[top]
    model_col = [None] * m if p.model is None else top_model.tolist()
    cols: dict[str, Any] = {
        "assessment_id": ids,
        "kind": [kind] * m,
        "record_id": unit_ids,
        "subject_ref": [refs_all[i] for i in top] if m != n else refs_all,
        "office_code": [offices[i] for i in top] if m != n else offices,
        "score": best.astype(np.float64),  # numpy columns go to Arrow without Python floats
        "rule_score": rule_scores[top],
        "model_score": model_col,
        "risk_lane": risk.tolist(),
        "lane": np.where(sampled, _LANE_ARRAY[np.maximum(sev, SEVERITY[policy.sample_lane])], risk).tolist(),
        "sampled": sampled.copy(),
        "reasons": _model_lines(kind, p.model_version, p.model_error, model_col),
        "rule_ids": [[] for _ in range(m)],
        "model_version": [p.model_version] * m,
        "factors": ["[]"] * m,
        "unknown_codes": [[] for _ in range(m)],
        "rules_version": [p.rules.stamp] * m,
        "reference_snapshot": [assessor.reference_snapshot] * m,
        "assessed_at": [at] * m,
        "path": ["batch"] * m,
        "items": ["[]"] * m,
    }
    single = np.flatnonzero(unit_rich & ~multi)
    if single.size:  # one row per record: its words column by column, as decide would write them
        _fill_single(assessor, kind, feats, hits, top, single, explain_units, cols)
    sample_line = f"Selected by the random compliance sample ({policy.sample_share:.1%} of records)"
    for u in np.flatnonzero(sampled & ~multi):  # decide adds it itself for the multi-item ones
        cols["reasons"][u].append(sample_line)

    rich = np.flatnonzero(multi & unit_rich)
    if rich.size:
        _fill_rich(
            assessor,
            kind,
            feats,
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
    for lane, count in zip(
        *np.unique(np.asarray(cols["lane"], dtype=object), return_counts=True), strict=True
    ):
        ASSESSED.labels(kind=kind, lane=lane, path="batch").inc(int(count))
    for name in ("kind", "model_version", "rules_version", "reference_snapshot", "assessed_at", "path"):
        cols[name] = pa.repeat(pa.scalar(cols[name][0], ASSESSMENTS_SCHEMA.field(name).type), m)
    return pa.table(cols, schema=ASSESSMENTS_SCHEMA)


def _fill_single(
    assessor: Assessor,
    kind: str,
    feats: pa.Table,
    hits: np.ndarray,
    top: np.ndarray,
    units: np.ndarray,
    explain_units: np.ndarray,
    cols: dict[str, Any],
) -> None:
    """Rule reasons, unknown codes and model factors of single-row units, the same words as decide.

    Reasons are made rule by rule over the rows the rule hit (one column read per template field),
    not record by record; each unit's list is then: hits (rule order), unknown codes, the model
    line already there, factors (the sample line is appended by the caller).
    """
    p = assessor.kind_parts(kind)
    rows = top[units]
    is_decl = kind == "declaration"
    front: list[list[str]] = [[] for _ in range(len(units))]  # per unit: rule and unknown-code lines
    ids_of: list[list[str]] = [[] for _ in range(len(units))]
    prefixes: list[str] = [""] * len(units)
    if is_decl:
        numbers = (
            feats["item_number"].take(pa.array(rows)).to_pylist()
            if "item_number" in feats.column_names
            else [None] * len(units)
        )
        prefixes = [f"Item {v}: " for v in numbers]
    prefix_arr = pa.array(prefixes, pa.string())
    sub = hits[rows]
    for j in np.flatnonzero(sub.any(axis=0)).tolist():  # rule order, so each unit's lines are too
        rule = p.rules.rules[j]
        at = np.flatnonzero(sub[:, j])
        names = [n for n in _template_fields(rule) if n in feats.column_names]
        effect = f"lane {rule.lane}" if rule.lane else f"+{float(rule.weight or 0.0):g}"
        tail = f" (rule {rule.rule_id} v{rule.version}, {effect})"
        rule_id, reason = rule.rule_id, rule.reason
        texts = _reason_texts(rule, feats, rows[at], prefix_arr.take(pa.array(at)), tail)
        if texts is not None:
            for k, text in zip(at.tolist(), texts, strict=True):
                front[k].append(text)
                ids_of[k].append(rule_id)
            continue
        values = [feats[n].take(pa.array(rows[at])).to_pylist() for n in names]
        for k, vals in zip(at.tolist(), zip(*values, strict=True) if values else [()] * len(at), strict=True):
            front[k].append(prefixes[k] + reason(dict(zip(names, vals, strict=True))) + tail)
            ids_of[k].append(rule_id)
    unknown = _has_unknown(feats)[rows]
    if unknown.any():
        at = np.flatnonzero(unknown)
        narrow = feats.select(_words_columns(kind, p.rules, feats, rows[at]))
        for k, record in zip(at.tolist(), narrow.take(pa.array(rows[at])).to_pylist(), strict=True):
            names = unknown_codes(record)
            front[k].extend(
                f"{prefixes[k]}Unknown code in {c} ({record.get(c)!s}): scored as unknown" for c in names
            )
            cols["unknown_codes"][int(units[k])] = list(dict.fromkeys(names))
    reasons, rule_ids = cols["reasons"], cols["rule_ids"]
    for k, u in enumerate(units.tolist()):
        if front[k]:
            reasons[u] = front[k] + reasons[u]
            rule_ids[u] = ids_of[k]
    to_explain = units[explain_units[units]]
    if to_explain.size and p.model is not None:
        explained = p.model.explain(feats.take(pa.array(top[to_explain])), top=assessor.explain_top)
        for u, factors in zip(to_explain.tolist(), explained, strict=True):
            out = factors_of(factors)
            cols["reasons"][u].extend(f.text for f in out)
            cols["factors"][u] = json.dumps([asdict(f) for f in out], default=str)


def _reason_texts(
    rule: Any, feats: pa.Table, rows: np.ndarray, prefixes: pa.Array, tail: str
) -> list[str] | None:
    """``prefix + rule.reason(row) + tail`` for these rows, each distinct value formatted once.

    Each field is formatted with the rules package's own ``render_reason`` (so a value reads
    exactly as in ``rule.reason``) over the column's distinct values, and the pieces are joined
    by Arrow. None for a rule that is not the rules package's compiled rule: then row by row.
    """
    from sciti.risk.rules import CompiledRule, render_reason

    if not isinstance(rule, CompiledRule):
        return None
    idx = pa.array(rows)
    pieces: list[Any] = [prefixes]
    for literal, name, fmt, conversion in string.Formatter().parse(rule.reason_template or ""):
        if literal:
            pieces.append(literal)
        if name is None:
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{fmt}" if fmt else "") + "}"
        missing = render_reason(field, {})
        if name not in feats.column_names:
            pieces.append(missing)
            continue
        col = feats[name].take(idx).combine_chunks()
        try:
            enc = col.dictionary_encode()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            pieces.append(pa.array([render_reason(field, {name: v}) for v in col.to_pylist()], pa.string()))
            continue
        words = pa.array([render_reason(field, {name: v}) for v in enc.dictionary.to_pylist()], pa.string())
        pieces.append(pc.fill_null(pc.take(words, enc.indices), missing))
    pieces.append(tail)
    return pc.binary_join_element_wise(*pieces, "").to_pylist()


def _template_fields(rule: Any) -> list[str]:
    template = getattr(rule, "reason_template", "") or ""
    names = (name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name)
    return list(dict.fromkeys(names))


def _words_columns(kind: str, rules: Any, feats: pa.Table, rows: np.ndarray) -> list[str]:
    """Columns that reasons and the roll-up read: reason fields, item number, office, unknown codes."""
    wanted = {"record_id", "item_number", "unknown_codes", spec(kind).office_field or "record_id"}
    wanted |= rules.reason_fields()
    if "unknown_codes" in feats.column_names and rows.size:
        col = feats["unknown_codes"].take(pa.array(rows))
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            wanted |= {str(v) for v in pc.unique(pc.list_flatten(col)).to_pylist() if v}
        else:
            wanted |= {v.strip() for s in col.to_pylist() if s for v in str(s).split(",")}
    return [c for c in feats.column_names if c in wanted]


def _fill_rich(
    assessor: Assessor,
    kind: str,
    feats: pa.Table,
    hits: np.ndarray,
    rule_scores: np.ndarray,
    model_scores: list[float | None],
    direct: np.ndarray,
    unit: np.ndarray,
    top: np.ndarray,
    rich: np.ndarray,
    explain_units: np.ndarray,
    cols: dict[str, Any],
) -> None:
    """Build the rich units through ``decide`` (the single-record path's own code)."""
    p = assessor.kind_parts(kind)
    rows_of_unit: dict[int, list[int]] = {int(u): [] for u in rich}
    for i in np.flatnonzero(np.isin(unit, rich)):
        rows_of_unit[int(unit[i])].append(int(i))
    needed = np.asarray(sorted(i for rows in rows_of_unit.values() for i in rows), dtype=np.int64)
    narrow = feats.select(_words_columns(kind, p.rules, feats, needed))  # only what the words use
    records = dict(zip(needed.tolist(), narrow.take(pa.array(needed)).to_pylist(), strict=True))
    hit_lists = p.rules.hits_of_records(records, hits)
    factors: dict[int, list[Any]] = {}
    to_explain = [int(u) for u in rich if explain_units[u]]
    if to_explain and p.model is not None:
        explained = p.model.explain(
            feats.take(pa.array([int(top[u]) for u in to_explain])), top=assessor.explain_top
        )
        factors = {u: factors_of(f) for u, f in zip(to_explain, explained, strict=True)}
    lanes = list(LANES)
    for u in rich.tolist():
        rows = rows_of_unit[u]
        results = [
            RowResult(
                row=records[i],
                rule_score=float(rule_scores[i]),
                model_score=model_scores[i],
                direct_lane=lanes[direct[i]] if direct[i] >= 0 else None,
                hits=hit_lists.get(i, []),
            )
            for i in rows
        ]
        a = decide(
            assessor,
            kind,
            record_id=cols["record_id"][u],
            ref=cols["subject_ref"][u],
            results=results,
            top=rows.index(int(top[u])),
            factors=factors.get(u, []),
            assessed_at=cols["assessed_at"][u],
            assessment_id=cols["assessment_id"][u],
            path="batch",
        )
        row = a.to_row()
        for name in cols:
            cols[name][u] = row[name]


__all__ = ["assess_table"]
