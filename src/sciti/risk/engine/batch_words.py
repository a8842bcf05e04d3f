"""The words of a batch run: reasons filled in from rule templates, for the records that need them.

Most records of a run are plain (score, lane and the model line, written column-wise); these
functions give the others their reasons, in the same words ``decide`` gives a single record.
"""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sciti.risk.engine import reasons as rc
from sciti.risk.engine.decide import (
    RowResult,
    decide,
    factor_said,
    factors_of,
    unknown_codes,
)
from sciti.risk.engine.subjects import spec
from sciti.risk.lanes import LANES

if TYPE_CHECKING:
    from sciti.risk.engine.assessor import Assessor

_HEAD = '{"code":"rule_hit"'  # how a rule hit's code begins (reasons.said_text): the item goes next
_END = '"}'  # and ends, after its reason text
# Arrow columns decide is handed and gives back unchanged (the unit's top row's office included).
_GIVEN = frozenset({"assessment_id", "record_id", "subject_ref", "office_code"})


def item_numbers(feats: pa.Table) -> np.ndarray:
    """Each row's goods item number as a sort key (a row without one after every numbered one),
    as ``assessor.item_order`` orders a record's items in real time."""
    if "item_number" not in feats.column_names:
        return np.zeros(feats.num_rows, dtype=np.float64)
    col = pc.cast(feats["item_number"], pa.float64())
    return np.asarray(pc.fill_null(col, np.inf).to_numpy(zero_copy_only=False), dtype=np.float64)


class _Words:
    """The words of rule hits and unknown codes, as Arrow pieces: (rows, one item per row) each.

    Pieces are in the order decide writes them (rule order, then unknown codes), so a row's
    items, gathered piece by piece, are its lines in order. ``codes`` has a piece for each piece
    of ``reasons``, with the same rows: each line's code (engine/reasons.py).
    """

    def __init__(self) -> None:
        self.reasons: list[tuple[np.ndarray, pa.Array]] = []
        self.rule_ids: list[tuple[np.ndarray, pa.Array]] = []
        self.unknown: list[tuple[np.ndarray, pa.Array]] = []
        self.codes: list[tuple[np.ndarray, pa.Array]] = []

    def python(self, rows: np.ndarray) -> dict[int, tuple[list[str], list[str], list[str], list[str]]]:
        """Row -> (lines, rule ids, unknown fields, line codes) as Python lists, for these rows
        (those with any)."""
        out: dict[int, tuple[list[str], list[str], list[str], list[str]]] = {}
        wanted = np.zeros(max(int(rows.max()) + 1, 1) if rows.size else 1, dtype=bool)
        wanted[rows] = True
        for which, pieces in enumerate((self.reasons, self.rule_ids, self.unknown, self.codes)):
            for at, values in pieces:
                inside = at < len(wanted)
                keep = np.zeros(len(at), dtype=bool)
                keep[inside] = wanted[at[inside]]
                if not keep.any():
                    continue
                for row, v in zip(at[keep].tolist(), values.filter(pa.array(keep)).to_pylist(), strict=True):
                    out.setdefault(row, ([], [], [], []))[which].append(v)
        return out


def rule_words(
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
    # A declaration's lines name the item: "Item 3: " in front of the sentence, "item":3 in its code.
    if kind == "declaration":
        if "item_number" in narrow.column_names:
            prefix_arr = _formatted(narrow["item_number"], lambda v: f"Item {v}: ")
            item_arr = _formatted(narrow["item_number"], lambda v: _code_part(rc.item_of(v)))
        else:
            prefix_arr = pa.repeat(pa.scalar("Item None: ", pa.string()), len(rows))
            item_arr = pa.repeat(pa.scalar(_code_part(rc.item_of(None)), pa.string()), len(rows))
    else:
        prefix_arr = pa.repeat(pa.scalar("", pa.string()), len(rows))
        item_arr = pa.repeat(pa.scalar("", pa.string()), len(rows))
    # Each hit rule's reason texts over the rows it hit, rule by rule; then every rule's lines and
    # codes at once, in rule order (so each row's are too).
    hit_at: list[np.ndarray] = []
    texts: list[pa.Array] = []
    tails: list[str] = []  # " (rule X v1, +45)": what follows the rule's reason in its line
    values: list[str] = []  # ',"rule":"X",...,"text":"': what its code holds before the reason
    ids: list[str] = []
    for j in np.flatnonzero(sub.any(axis=0)).tolist():
        rule = p.rules.rules[j]
        at = np.flatnonzero(sub[:, j])
        weight = float(rule.weight or 0.0)
        tails.append(rc.english(rc.rule_hit(rule.rule_id, rule.version, weight, rule.lane, "", rc.NO_ITEM)))
        blank = rc.said_text(rc.rule_hit(rule.rule_id, rule.version, weight, rule.lane, "", rc.NO_ITEM))
        values.append(blank[len(_HEAD) : -len(_END)])  # the code of a blank reason, cut around it
        ids.append(rule.rule_id)
        hit_at.append(at)
        at_arr = pa.array(at)
        found = _reason_texts(rule, narrow, at_arr)
        if found is None:  # not a compiled rule: its own reason, row by row
            names = [n for n in _template_fields(rule) if n in narrow.column_names]
            columns = [narrow[n].take(at_arr).to_pylist() for n in names]
            found = pa.array(
                [
                    rule.reason(dict(zip(names, vals, strict=True)))
                    for vals in (zip(*columns, strict=True) if columns else [()] * len(at))
                ],
                pa.string(),
            )
        texts.append(found)
    if hit_at:
        at_all = pa.array(np.concatenate(hit_at))
        which = pa.array(np.repeat(np.arange(len(hit_at)), [len(a) for a in hit_at]))
        said = pa.concat_arrays(texts)
        where = rows[np.concatenate(hit_at)]
        line = [prefix_arr.take(at_all), said, pa.array(tails, pa.string()).take(which)]
        out.reasons.append((where, pc.binary_join_element_wise(*line, "")))
        # <head><item><values><reason>"}: the code's JSON with the row's item and reason put in.
        code = [_HEAD, item_arr.take(at_all), pa.array(values, pa.string()).take(which), _escaped(said), _END]
        out.codes.append((where, pc.binary_join_element_wise(*code, "")))
        out.rule_ids.append((where, pa.array(ids, pa.string()).take(which)))
    unknown = unknown_rows[rows]
    if unknown.any():
        at = np.flatnonzero(unknown)
        narrow_u = feats.select(_words_columns(kind, p.rules, feats, rows[at]))
        is_decl, has_number = kind == "declaration", "item_number" in narrow.column_names
        items = narrow["item_number"].take(pa.array(at)).to_pylist() if is_decl and has_number else []
        line_rows: list[int] = []
        lines: list[str] = []
        line_codes: list[str] = []
        code_rows: list[int] = []
        codes: list[str] = []
        records = narrow_u.take(pa.array(rows[at])).to_pylist()
        for k, (row, record) in enumerate(zip(rows[at].tolist(), records, strict=True)):
            names = unknown_codes(record)
            item = rc.item_of(items[k] if has_number else None) if is_decl else rc.NO_ITEM
            for c in names:
                made = rc.unknown_code(c, record.get(c), item)
                lines.append(rc.english(made))
                line_codes.append(rc.said_text(made))
            line_rows.extend([row] * len(names))
            distinct = list(dict.fromkeys(names))
            codes.extend(distinct)
            code_rows.extend([row] * len(distinct))
        at_lines = np.asarray(line_rows, dtype=np.int64)
        out.reasons.append((at_lines, pa.array(lines, pa.string())))
        out.codes.append((at_lines, pa.array(line_codes, pa.string())))
        out.unknown.append((np.asarray(code_rows, dtype=np.int64), pa.array(codes, pa.string())))
    return out


def _code_part(item: dict[str, Any]) -> str:
    """``,"item":3``: the item of a line's code as it reads inside the code's JSON."""
    return "," + rc.said_text(item)[1:-1] if item else ""


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


def fill_single(
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
        ("reason_codes", words.codes),
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
        reference=assessor.reference,  # its fallbacks, currency and counts: as real time's
    )
    for u, factors in zip(to_explain.tolist(), explained, strict=True):
        found = found_of.get(int(top[u]))
        if found is not None:
            lines, ids, unknown, codes = found
            cols["reasons"][u] = lines + cols["reasons"][u]
            cols["reason_codes"][u] = codes + cols["reason_codes"][u]
            cols["rule_ids"][u] = ids
            if unknown:
                cols["unknown_codes"][u] = unknown
        out = factors_of(factors)
        cols["reasons"][u].extend(f.text for f in out)
        cols["reason_codes"][u].extend(rc.said_text(factor_said(f)) for f in out)
        cols["factors"][u] = json.dumps([f.to_dict() for f in out], default=str)


def _reason_texts(rule: Any, feats: pa.Table, idx: pa.Array) -> pa.Array | None:
    """``rule.reason(row)`` for these rows, each distinct value formatted once.

    Each field is formatted with the rules package's own ``render_reason`` (so a value reads
    exactly as in ``rule.reason``) over the column's distinct values, and the pieces are joined
    by Arrow. None for a rule that is not the rules package's compiled rule: then row by row.
    """
    from sciti.risk.rules import CompiledRule, render_reason

    if not isinstance(rule, CompiledRule):
        return None
    pieces: list[Any] = []
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
    if not any(isinstance(piece, pa.Array) for piece in pieces):  # a reason without fields
        return pa.repeat(pa.scalar("".join(pieces), pa.string()), len(idx))
    return pc.binary_join_element_wise(*pieces, "")


# What JSON escapes in a string (``json.dumps(..., ensure_ascii=False)``): quote, backslash, controls.
_TO_ESCAPE = r'["\\\x00-\x1f]'  # RE2


def _escaped(texts: pa.Array) -> pa.Array:
    """``texts`` as they read inside a JSON string: as they are, unless one holds a character JSON
    escapes (a quote, a backslash, a control character), rare enough to escape row by row."""
    if not pc.any(pc.match_substring_regex(texts, _TO_ESCAPE)).as_py():
        return texts
    return pa.array([rc.escaped(t) for t in texts.to_pylist()], pa.string())


def _template_names(rule: Any) -> list[str]:
    template = getattr(rule, "reason_template", "") or ""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _template_fields(rule: Any) -> list[str]:
    template = getattr(rule, "reason_template", "") or ""
    names = (name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name)
    return list(dict.fromkeys(names))


def _words_columns(kind: str, rules: Any, feats: pa.Table, rows: np.ndarray) -> list[str]:
    """Columns that reasons and the roll-up read: reason fields, item number, office, unknown codes."""
    wanted = {"record_id", "item_number", "unknown_codes", *spec(kind).office_fields}
    wanted |= rules.reason_fields()
    if "unknown_codes" in feats.column_names and rows.size:
        col = feats["unknown_codes"].take(pa.array(rows))
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            wanted |= {str(v) for v in pc.unique(pc.list_flatten(col)).to_pylist() if v}
        else:
            wanted |= {v.strip() for s in col.to_pylist() if s for v in str(s).split(",")}
    return [c for c in feats.column_names if c in wanted]


def fill_rich(
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
    for i in wanted[np.argsort(item_numbers(feats)[wanted], kind="stable")]:
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
            reference=assessor.reference,
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


__all__ = ["fill_rich", "fill_single", "item_numbers", "rule_words"]
