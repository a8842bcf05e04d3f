"""A trained model ready to score: probabilities and, for every score, the factors behind it.

Contributions are LightGBM's TreeSHAP values (``pred_contrib=True``) on the log-odds scale: they
add up, with the base value, to the score's log-odds. Each factor is written in words from the
feature's template in features.yaml, e.g. "Declared unit value is 18% of the reference price for
HS 851712 from CN (contributes +0.21)". A smoothed rate says the counts it rests on, looked up in the
reference for the explained rows only (features/evidence.py, decision 0115).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import re
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from sciti.risk.features.catalog import columns
from sciti.risk.features.evidence import Evidence, evidence_of, evidence_words
from sciti.risk.features.national import DEFAULT, National
from sciti.risk.models.matrix import row_matrix, to_matrix

if TYPE_CHECKING:
    from sciti.risk.features.reference import Reference

log = logging.getLogger(__name__)

ARTEFACT_FORMAT = "sciti-lightgbm/1"


@dataclass(frozen=True)
class Factor:
    feature: str
    value: Any
    contribution: float
    text: str
    evidence: Evidence | None = None  # a smoothed rate's counts (None: no rate, or no reference given)
    # Which of the feature's templates said it and the record's values it names (``said_of``), so
    # a page can say the same sentence in its reader's language (decision 0118).
    said: dict[str, Any] | None = None


@dataclass
class ScoringModel:
    version: str
    kind: str
    label: str
    numeric: list[str]
    categories: dict[str, list[str]]
    booster: lgb.Booster
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categories]

    @cached_property
    def _vocab(self) -> dict[str, dict[str, int]]:
        return {c: {v: i for i, v in enumerate(vs)} for c, vs in self.categories.items()}

    def matrix(self, data: pa.Table | np.ndarray | dict[str, Any] | list[dict[str, Any]]) -> np.ndarray:
        if isinstance(data, np.ndarray):
            return data
        if isinstance(data, dict):
            return row_matrix(data, self.numeric, self._vocab)
        if isinstance(data, list):
            data = pa.Table.from_pylist(data)
        return to_matrix(data, self.numeric, self.categories)

    def score(self, data: pa.Table | np.ndarray | dict[str, Any] | list[dict[str, Any]]) -> np.ndarray:
        """Probability of the label for each row (features table, matrix, or record dicts)."""
        x = self.matrix(data)
        if x.shape[0] == 0:
            return np.empty(0)
        if x.shape[0] == 1:
            return self._single_row(_PREDICT_NORMAL, 1)(x)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)

    def contributions(self, data: Any) -> np.ndarray:
        """Rows x (features + 1) TreeSHAP contributions (last column: base value), log-odds."""
        x = self.matrix(data)
        if x.shape[0] == 0:  # LightGBM divides by the row count
            return np.empty((0, len(self.feature_names) + 1))
        if x.shape[0] == 1:
            return self._single_row(_PREDICT_CONTRIB, x.shape[1] + 1)(x).reshape(1, -1)
        if x.shape[0] >= _PARALLEL_ROWS:  # a batch: every core, as for its scores (same numbers)
            return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=0), dtype=np.float64)
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)

    def _single_row(self, predict_type: int, width: int) -> Callable[[np.ndarray], np.ndarray]:
        key = f"_single_row_{predict_type}"
        found = self.__dict__.get(key)
        if found is None:
            try:
                found = _SingleRow(self.booster, predict_type, width)
            except Exception as exc:  # the fast call rests on LightGBM internals: a release may move them
                log.warning(
                    "model %s: LightGBM's single-row call is not available (%s); single records are "
                    "scored through Booster.predict, with the same results, more slowly",
                    self.version,
                    exc,
                )
                contrib = predict_type == _PREDICT_CONTRIB
                booster = self.booster

                def found(x: np.ndarray) -> np.ndarray:
                    out = booster.predict(x, pred_contrib=contrib, num_threads=1)
                    return np.asarray(out, dtype=np.float64).reshape(-1)

            self.__dict__[key] = found
        return found

    def explain(
        self,
        data: pa.Table | list[dict[str, Any]] | dict[str, Any],
        top: int = 5,
        fallbacks: Mapping[str, float] | None = None,
        national: National = DEFAULT,
        reference: Reference | None = None,
    ) -> list[list[Factor]]:
        """Top ``top`` factors per row, largest effect first, each in words an officer can act on.

        ``fallbacks``: per rate feature, its value for a group never inspected (the reference's
        overall rates), so the words do not claim a history that does not exist. ``national``:
        the currency and cash threshold the words name (the reference's, from the settings).
        ``reference``: the one the rows' features come from; it gives both of those, and each rate
        its counts ("4 frauds in 10 past inspections"). Batch and real time pass the same one."""
        if reference is not None:
            fallbacks, national = reference.fallbacks, reference.national
        rows = _rows(data)
        contrib = self.contributions(data)
        names = self.feature_names
        out: list[list[Factor]] = []
        for i, row in enumerate(rows):
            c = contrib[i, :-1]
            order = np.argsort(-np.abs(c), kind="stable")[:top]
            factors = []
            filled = _filled(row, national)
            for j in order:
                if c[j] == 0.0:
                    continue
                name, value = names[j], float(c[j])
                found = evidence_of(reference, self.kind, name, row) if reference is not None else None
                fallback = (fallbacks or {}).get(name)
                text = describe(self.kind, name, row, value, filled, fallback, evidence=found)
                said = said_of(self.kind, name, row, filled, fallback, found)
                factors.append(Factor(name, _plain(row.get(name)), value, text, found, said))
            out.append(factors)
        return out

    def to_artefact(self) -> bytes:
        doc = {
            "format": ARTEFACT_FORMAT,
            "version": self.version,
            "kind": self.kind,
            "label": self.label,
            "numeric": self.numeric,
            "categories": self.categories,
            "meta": self.meta,
            "booster": self.booster.model_to_string(),
        }
        return json.dumps(doc, default=str).encode("utf-8")

    @classmethod
    def from_artefact(cls, data: bytes) -> ScoringModel:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != ARTEFACT_FORMAT:
            raise ValueError(f"not a {ARTEFACT_FORMAT} artefact (format {doc.get('format')!r})")
        booster = lgb.Booster(model_str=doc["booster"])
        return cls(
            doc["version"], doc["kind"], doc["label"], doc["numeric"], doc["categories"], booster, doc["meta"]
        )


_PARALLEL_ROWS = 256  # from this many rows, contributions use every core (num_threads=0: OpenMP default)
_PREDICT_NORMAL, _PREDICT_CONTRIB = 0, 3  # C_API_PREDICT_* in LightGBM's c_api.h
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class _SingleRow:
    """One row through LightGBM's C API for single rows (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` sets up a predictor and converts its input on every call: for one row
    that costs more than scoring it. The C API's "fast" single-row call prepares all that once.
    Same predictor, same trees, same iterations as ``Booster.predict`` (tested to give the same
    numbers); one call at a time, as LightGBM asks of a prepared configuration.

    The call keeps the GIL (the library seen through ``ctypes.PyDLL``; decision 0070): it is short.
    Released, as ``ctypes.CDLL`` does, the event loop got the GIL back only when the assessment
    writer's thread let go of it: more than a millisecond lost in about one answer in 25.
    """

    def __init__(self, booster: lgb.Booster, predict_type: int, width: int):
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._lib, self._check, self.width = _LIB, _safe_call, width
        self._predict = ctypes.PyDLL(_LIB._name, handle=_LIB._handle).LGBM_BoosterPredictForMatSingleRowFast
        self._lock = threading.Lock()
        self._booster = booster  # the configuration points into it: keep it alive
        self._handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration),  # as Booster.predict: the best, or all (-1)
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(booster.num_feature()),
                _c_str("num_threads=1"),
                ctypes.byref(self._handle),
            )
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(x[0], dtype=np.float64)
        out = np.empty(self.width, dtype=np.float64)
        length = ctypes.c_int64()
        with self._lock:
            self._check(
                self._predict(
                    self._handle,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(length),
                    out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
        return out[: length.value]

    def __del__(self) -> None:
        # At interpreter exit the library may be gone before this object: nothing left to free then.
        with contextlib.suppress(Exception):
            if self._handle.value:
                self._lib.LGBM_FastConfigFree(self._handle)


def _rows(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    if isinstance(data, pa.Table):
        return data.to_pylist()
    raise TypeError("explain needs a features table or record dicts (a bare matrix has no values to name)")


def _plain(value: Any) -> Any:
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


class _Filled(dict):
    """A field the record does not have at all reads "unknown" too, like one it has empty."""

    def __missing__(self, key: str) -> str:
        return UNKNOWN


UNKNOWN = "unknown"  # the word rule reasons use for a missing value as well


def _filled(row: dict[str, Any], national: National = DEFAULT) -> dict[str, Any]:
    """The record's values for the templates (a missing one reads "unknown"), and the national
    currency and cash threshold (``{national_currency}``, ``{cash_reporting_threshold}``)."""
    # A blank text is as good as none: "Courier  has no past inspections" helps no one.
    blank = {k for k, v in row.items() if v is None or (isinstance(v, str) and not v.strip())}
    return _Filled(national.words, **{k: UNKNOWN if k in blank else v for k, v in row.items()})


def describe(
    kind: str,
    name: str,
    row: dict[str, Any],
    contribution: float,
    filled: dict[str, Any] | None = None,
    fallback: float | None = None,
    national: National = DEFAULT,
    evidence: Evidence | None = None,
) -> str:
    """One factor in words: the feature's template filled from the record, then its effect.

    ``fallback``: the value a rate takes when its group has no past inspections (the overall
    rate, see Reference.fallbacks); such a rate is said to be assumed, not found. ``evidence``:
    the counts behind a rate (its template's ``{evidence}``); without them, how such a rate is made.
    """
    info = columns(kind).get(name)
    value = row.get(name)
    effect = f"(contributes {contribution:+.2f})"
    # The description's first clause: its formula and examples are for analysts, not officers.
    label = _CLAUSE.split(info.description, maxsplit=1)[0].rstrip(".") if info else name.replace("_", " ")
    if value is None:
        return f"Missing: {label} {effect}"
    if isinstance(value, float) and not math.isfinite(value):
        # e.g. a unit value over a mass of 0 kg: "inf per kg" helps no one.
        return f"Cannot be computed from the declared values: {label} {effect}"
    form = template_form(kind, name, value, fallback, evidence)
    template = getattr(info, form) if info and form else None
    if template:
        values = filled if isinstance(filled, _Filled) else _filled(filled or row, national)
        try:
            said = evidence_words(kind, name, template, evidence) if "{evidence}" in template else ""
            return f"{template.format_map(_Filled(values, value=value, evidence=said))} {effect}"
        except (ValueError, TypeError, KeyError, IndexError):
            pass
    shown = f"{value:,.6g}" if isinstance(value, float) else value  # not 0.21637064573867548
    return f"{name.replace('_', ' ').capitalize()} is {shown} {effect}"


_CLAUSE = re.compile(r": | \(|; ")
_FIELDS = string.Formatter()


def template_form(
    kind: str, name: str, value: Any, fallback: float | None = None, evidence: Evidence | None = None
) -> str | None:
    """Which of the feature's templates says ``value``: ``explain``, ``explain_no`` (a false yes/no)
    or ``explain_unseen`` (a rate of a group never inspected); None when none does."""
    info = columns(kind).get(name)
    if info is None or value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool) and not value:
        return "explain_no" if info.explain_no else None
    if info.explain_unseen and _unseen(value, fallback, evidence):
        return "explain_unseen"
    return "explain" if info.explain else None


def said_of(
    kind: str,
    name: str,
    row: dict[str, Any],
    filled: dict[str, Any] | None = None,
    fallback: float | None = None,
    evidence: Evidence | None = None,
) -> dict[str, Any]:
    """The template a factor's sentence is made from and the values it names besides the factor's
    own (``template``, ``named``): what a factor's code carries, so a page says the sentence from
    the same parts in its reader's language. A value the record lacks is None (the English says
    "unknown"). ``template`` None: no template says the value, the sentence names only the
    feature and its value ("Import type is 11", "Missing: ...")."""
    plain: dict[str, Any] = {"template": None, "named": {}}
    form = template_form(kind, name, row.get(name), fallback, evidence)
    info = columns(kind).get(name)
    template = getattr(info, form) if info and form else None
    if not template:
        return plain
    values = filled if isinstance(filled, _Filled) else _filled(filled or row)
    try:  # a template its values do not fit is not said (describe falls back to plain words)
        template.format_map(_Filled(values, value=row.get(name), evidence=""))
    except (ValueError, TypeError, KeyError, IndexError):
        return plain
    named: dict[str, Any] = {}
    for _, field_name, _, _ in _FIELDS.parse(template):
        if field_name and field_name not in ("value", "evidence"):
            found = dict.get(values, field_name)  # not __missing__'s "unknown"
            blank = field_name in row and (found is None or found == UNKNOWN)
            named[field_name] = None if found is None or blank else _json(found)
    return {"template": form, "named": named}


def _json(value: Any) -> Any:
    """A named value as a code's JSON keeps it: the threshold's Decimal as a number, a date as text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _unseen(value: Any, fallback: float | None, evidence: Evidence | None = None) -> bool:
    if evidence is not None:
        return evidence.inspections == 0
    # A smoothed rate over no inspections is exactly the overall rate, give or take rounding in SQL.
    return fallback is not None and isinstance(value, float) and math.isclose(value, fallback, rel_tol=1e-9)
