"""Batch assessment: a whole table at once, the numbers vectorised, the words only where needed.

Features come from ``features.compute_batch``, rules are evaluated on Arrow columns (see
``arrowrules``), the model scores the whole matrix in a second thread while the rules run. Records
with a rule hit, an unknown code, several goods items or a model explanation go through the same
``decide`` as a single record; every other record is plain (score, lane and the model line) and is
written column-wise, which is where the speed is.
"""

from __future__ import annotations

import gc
import json
import string
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.model import make_record_id
from sciti.risk.engine import parts
from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, combine_many
from sciti.risk.engine.columns import Lanes, LazyTexts, Sparse, all_distinct, assessment_ids, batch_prefix
from sciti.risk.engine.decide import (
    RowResult,
    calibration_of,
    decide,
    factors_of,
    model_line,
    model_scores,
    unknown_codes,
)
from sciti.risk.engine.metrics import ASSESSED
from sciti.risk.engine.subjects import REALTIME_SOURCE, spec
from sciti.risk.lanes import LANES, SEVERITY

if TYPE_CHECKING:
    from sciti.risk.engine.assessor import Assessor

_LANE_ARRAY = np.array(LANES, dtype=object)
# Arrow columns decide is handed and gives back unchanged (the unit's top row's office included).
_GIVEN = frozenset({"assessment_id", "record_id", "subject_ref", "office_code"})


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


def _item_numbers(feats: pa.Table) -> np.ndarray:
    """Each row's goods item number as a sort key (a row without one after every numbered one),
    as ``assessor.item_order`` orders a record's items in real time."""
    if "item_number" not in feats.column_names:
        return np.zeros(feats.num_rows, dtype=np.float64)
    col = pc.cast(feats["item_number"], pa.float64())
    return np.asarray(pc.fill_null(col, np.inf).to_numpy(zero_copy_only=False), dtype=np.float64)


def _units(
    unit_of_row: list[str], score_arr: np.ndarray, item_numbers: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row, top row of each unit, its score, rows per unit); units in order of appearance.

    The top row is the highest score; on equal scores the lowest item number (``item_numbers``),
    then the earliest row: the item real time names, whatever order the lake's rows come in."""
    n = len(unit_of_row)
    if item_numbers is None:
        item_numbers = np.zeros(n, dtype=np.float64)
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
    for i in np.lexsort((np.arange(n), item_numbers, -score_arr)):  # highest score, lowest item
        if top[unit[i]] < 0:
            top[unit[i]] = i
            best[unit[i]] = score_arr[i]
    return unit, top, best, counts[order]


def _model_lines(
    kind: str, version: str | None, error: str | None, scores: np.ndarray, calibration: Any
) -> pa.Array:
    """``model_line(...)`` per record: the line of each whole score made once, then looked up.

    decide.model_line writes ``f"{score:.0f}"`` (round half to even, as ``np.rint``), and the
    line depends on nothing else, so the 101 possible lines are all there is to format.
    """
    if version is None:
        return pa.repeat(pa.scalar(model_line(kind, None, None, error), pa.string()), len(scores))
    lines = pa.array(
        [model_line(kind, version, float(k), error, calibration) for k in range(101)], pa.string()
    )
    whole = np.clip(np.rint(np.nan_to_num(scores, nan=0.0)), 0, 100).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(whole), lines)  # no string copied per record


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
        office_field = spec(kind).office_field
        offices = (
            pc.cast(feats[office_field], pa.string())
            if office_field and office_field in feats.column_names
            else pa.nulls(n, pa.string())
        )
        # While the model runs: the words of the rule hits and unknown codes (Python work that
        # needs no score), for every row that has any.
        words = (
            _rule_words(assessor, kind, feats, word_hits, unknown_rows, word_rows) if one_per_row else None
        )
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
        item_numbers = _item_numbers(feats)
        unit, top, best, items_per_unit = _units(unit_of_row.to_pylist(), score_arr, item_numbers)
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
    lines = _model_lines(kind, p.model_version, p.model_error, top_model, calibration_of(p.model))
    line_of = LazyTexts(lines)
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
    }
    single = np.flatnonzero(unit_rich & ~multi)
    if single.size:  # one row per record: its words column by column, as decide would write them
        if words is None:
            words = _rule_words(assessor, kind, feats, hits[top[single]], unknown_rows, top[single])
        _fill_single(assessor, kind, feats, words, top, single, explain_units, cols)
    sample_line = f"Selected by the random compliance sample ({policy.sample_share:.1%} of records)"
    reasons = cols["reasons"]
    in_sample = np.flatnonzero(sampled & ~multi)  # decide adds it itself for the multi-item ones
    own = np.isin(in_sample, np.fromiter(reasons.own, dtype=np.int64, count=len(reasons.own)))
    for u in in_sample[own].tolist():
        reasons[u].append(sample_line)
    reasons.add(
        in_sample[~own], pa.repeat(pa.scalar(sample_line, pa.string()), int((~own).sum())), after=True
    )

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
    counts = np.bincount(lane_sev, minlength=len(LANES))  # decide gives the rich units the same lanes
    for lane, count in zip(LANES, counts.tolist(), strict=True):
        if count:
            ASSESSED.labels(kind=kind, lane=lane, path="batch").inc(int(count))
    for name in ("kind", "model_version", "rules_version", "reference_snapshot", "assessed_at", "path"):
        cols[name] = pa.repeat(pa.scalar(cols[name][0], ASSESSMENTS_SCHEMA.field(name).type), m)
    for name in ("reasons", "rule_ids", "unknown_codes"):
        cols[name] = cols[name].list_array()
    for name in ("factors", "items"):
        cols[name] = cols[name].text_array("[]")
    for name in ("risk_lane", "lane"):
        cols[name] = cols[name].arrow()
    return pa.table(cols, schema=ASSESSMENTS_SCHEMA)


class _Words:
    """The words of rule hits and unknown codes, as Arrow pieces: (rows, one item per row) each.

    Pieces are in the order decide writes them (rule order, then unknown codes), so a row's
    items, gathered piece by piece, are its lines in order.
    """

    def __init__(self) -> None:
        self.reasons: list[tuple[np.ndarray, pa.Array]] = []
        self.rule_ids: list[tuple[np.ndarray, pa.Array]] = []
        self.unknown: list[tuple[np.ndarray, pa.Array]] = []

    def python(self, rows: np.ndarray) -> dict[int, tuple[list[str], list[str], list[str]]]:
        """Row -> (lines, rule ids, unknown fields) as Python lists, for these rows (those with any)."""
        out: dict[int, tuple[list[str], list[str], list[str]]] = {}
        wanted = np.zeros(max(int(rows.max()) + 1, 1) if rows.size else 1, dtype=bool)
        wanted[rows] = True
        for which, pieces in enumerate((self.reasons, self.rule_ids, self.unknown)):
            for at, values in pieces:
                inside = at < len(wanted)
                keep = np.zeros(len(at), dtype=bool)
                keep[inside] = wanted[at[inside]]
                if not keep.any():
                    continue
                for row, v in zip(at[keep].tolist(), values.filter(pa.array(keep)).to_pylist(), strict=True):
                    out.setdefault(row, ([], [], []))[which].append(v)
        return out


def _rule_words(
    assessor: Assessor,
    kind: str,
    feats: pa.Table,
    sub: np.ndarray,
    unknown_rows: np.ndarray,
    rows: np.ndarray,
) -> _Words:
    """The rule and unknown-code lines, rule ids and unknown fields of ``rows``: the same words as decide.

    Reasons are made rule by rule over the rows the rule hit (one column read per template
    field, from the few rows' own copy), not record by record. Nothing here depends on the model's score.
    ``sub`` is the hit matrix's rows ``rows``.
    """
    p = assessor.kind_parts(kind)
    out = _Words()
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return out
    fields = p.rules.reason_fields() | {"item_number"}
    fields |= {name for r in p.rules.rules for name in _template_names(r)}  # as _reason_texts reads them
    narrow = feats.select([c for c in feats.column_names if c in fields]).take(pa.array(rows))
    narrow = narrow.combine_chunks()
    if kind == "declaration":
        if "item_number" in narrow.column_names:
            prefix_arr = _formatted(narrow["item_number"], lambda v: f"Item {v}: ")
        else:
            prefix_arr = pa.repeat(pa.scalar("Item None: ", pa.string()), len(rows))
    else:
        prefix_arr = pa.repeat(pa.scalar("", pa.string()), len(rows))
    for j in np.flatnonzero(sub.any(axis=0)).tolist():  # rule order, so each row's lines are too
        rule = p.rules.rules[j]
        at = np.flatnonzero(sub[:, j])
        effect = f"lane {rule.lane}" if rule.lane else f"+{float(rule.weight or 0.0):g}"
        tail = f" (rule {rule.rule_id} v{rule.version}, {effect})"
        at_arr = pa.array(at)
        texts = _reason_texts(rule, narrow, at_arr, prefix_arr.take(at_arr), tail)
        if texts is None:  # not a compiled rule: its own reason, row by row
            names = [n for n in _template_fields(rule) if n in narrow.column_names]
            values = [narrow[n].take(at_arr).to_pylist() for n in names]
            prefixes = prefix_arr.take(at_arr).to_pylist()
            texts = pa.array(
                [
                    prefix + rule.reason(dict(zip(names, vals, strict=True))) + tail
                    for prefix, vals in zip(
                        prefixes, zip(*values, strict=True) if values else [()] * len(at), strict=True
                    )
                ],
                pa.string(),
            )
        out.reasons.append((rows[at], texts))
        out.rule_ids.append((rows[at], pa.repeat(pa.scalar(rule.rule_id, pa.string()), len(at))))
    unknown = unknown_rows[rows]
    if unknown.any():
        at = np.flatnonzero(unknown)
        narrow_u = feats.select(_words_columns(kind, p.rules, feats, rows[at]))
        prefixes = prefix_arr.take(pa.array(at)).to_pylist()
        line_rows: list[int] = []
        lines: list[str] = []
        code_rows: list[int] = []
        codes: list[str] = []
        records = narrow_u.take(pa.array(rows[at])).to_pylist()
        for row, prefix, record in zip(rows[at].tolist(), prefixes, records, strict=True):
            names = unknown_codes(record)
            lines.extend(f"{prefix}Unknown code in {c} ({record.get(c)!s}): scored as unknown" for c in names)
            line_rows.extend([row] * len(names))
            distinct = list(dict.fromkeys(names))
            codes.extend(distinct)
            code_rows.extend([row] * len(distinct))
        out.reasons.append((np.asarray(line_rows, dtype=np.int64), pa.array(lines, pa.string())))
        out.unknown.append((np.asarray(code_rows, dtype=np.int64), pa.array(codes, pa.string())))
    return out


def _formatted(col: pa.Array | pa.ChunkedArray, fmt: Any) -> pa.Array:
    """``fmt(value)`` per row as Arrow text, each distinct value (and NULL) formatted once."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    try:
        enc = col.dictionary_encode()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([fmt(v) for v in col.to_pylist()], pa.string())
    words = pa.array([fmt(v) for v in enc.dictionary.to_pylist()], pa.string())
    return pc.fill_null(pc.take(words, enc.indices), fmt(None))


def _fill_single(
    assessor: Assessor,
    kind: str,
    feats: pa.Table,
    words: _Words,
    top: np.ndarray,
    units: np.ndarray,
    explain_units: np.ndarray,
    cols: dict[str, Any],
) -> None:
    """Reasons, rule ids, unknown codes and model factors of single-row units, the same words as decide.

    Each unit's list is: its row's ``words`` (rule hits, unknown codes), the model line already
    there, factors (the sample line is appended by the caller). Units with factors are built in
    Python; the others get their words as Arrow pieces, in front of the model line.
    """
    p = assessor.kind_parts(kind)
    to_explain = units[explain_units[units]] if p.model is not None else units[:0]
    unit_of_row = np.full(feats.num_rows, -1, dtype=np.int64)
    unit_of_row[top[units]] = units
    for name, pieces in (
        ("reasons", words.reasons),
        ("rule_ids", words.rule_ids),
        ("unknown_codes", words.unknown),
    ):
        for rows, values in pieces:
            to = unit_of_row[rows]  # -1: a row that is no single-row unit's top
            if (to < 0).any():
                keep = to >= 0
                to, values = to[keep], values.filter(pa.array(keep))
            cols[name].add(to, values)  # units built in Python below ignore these
    if not to_explain.size or p.model is None:
        return
    found_of = words.python(top[to_explain])
    explained = p.model.explain(
        feats.take(pa.array(top[to_explain])),
        top=assessor.explain_top,
        fallbacks=assessor.reference.fallbacks,
    )
    for u, factors in zip(to_explain.tolist(), explained, strict=True):
        found = found_of.get(int(top[u]))
        if found is not None:
            lines, ids, unknown = found
            cols["reasons"][u] = lines + cols["reasons"][u]
            cols["rule_ids"][u] = ids
            if unknown:
                cols["unknown_codes"][u] = unknown
        out = factors_of(factors)
        cols["reasons"][u].extend(f.text for f in out)
        cols["factors"][u] = json.dumps([f.to_dict() for f in out], default=str)


def _reason_texts(
    rule: Any, feats: pa.Table, idx: pa.Array, prefixes: pa.Array, tail: str
) -> pa.Array | None:
    """``prefix + rule.reason(row) + tail`` for these rows, each distinct value formatted once.

    Each field is formatted with the rules package's own ``render_reason`` (so a value reads
    exactly as in ``rule.reason``) over the column's distinct values, and the pieces are joined
    by Arrow. None for a rule that is not the rules package's compiled rule: then row by row.
    """
    from sciti.risk.rules import CompiledRule, render_reason

    if not isinstance(rule, CompiledRule):
        return None
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
    return pc.binary_join_element_wise(*pieces, "")


def _template_names(rule: Any) -> list[str]:
    template = getattr(rule, "reason_template", "") or ""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


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
    """Build the rich units through ``decide`` (the single-record path's own code).

    A unit's rows go to ``decide`` in item-number order, as real time sends a record's items, so
    the reasons and ``items`` list them alike whatever order the lake's rows come in."""
    p = assessor.kind_parts(kind)
    rows_of_unit: dict[int, list[int]] = {int(u): [] for u in rich}
    wanted = np.flatnonzero(np.isin(unit, rich))
    for i in wanted[np.argsort(_item_numbers(feats)[wanted], kind="stable")]:
        rows_of_unit[int(unit[i])].append(int(i))
    needed = np.asarray(sorted(i for rows in rows_of_unit.values() for i in rows), dtype=np.int64)
    narrow = feats.select(_words_columns(kind, p.rules, feats, needed))  # only what the words use
    records = dict(zip(needed.tolist(), narrow.take(pa.array(needed)).to_pylist(), strict=True))
    hit_lists = p.rules.hits_of_records(records, hits)
    factors: dict[int, list[Any]] = {}
    to_explain = [int(u) for u in rich if explain_units[u]]
    if to_explain and p.model is not None:
        explained = p.model.explain(
            feats.take(pa.array([int(top[u]) for u in to_explain])),
            top=assessor.explain_top,
            fallbacks=assessor.reference.fallbacks,
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
            record_id=cols["record_id"][u].as_py(),
            ref=cols["subject_ref"][u].as_py(),
            results=results,
            top=rows.index(int(top[u])),
            factors=factors.get(u, []),
            assessed_at=cols["assessed_at"][u],
            assessment_id=cols["assessment_id"][u].as_py(),
            path="batch",
        )
        row = a.to_row()
        for name in cols:
            if name not in _GIVEN:
                cols[name][u] = row[name]


__all__ = ["assess_table"]
