"""A trained model ready to score: probabilities and, for every score, the factors behind it.

Contributions are LightGBM's TreeSHAP values (``pred_contrib=True``) on the log-odds scale: they
add up, with the base value, to the score's log-odds. Each factor is written in words from the
feature's template in features.yaml, e.g. "Declared unit value is 18% of the reference price for
HS 851712 from CN (contributes +0.21)".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from sciti.risk.features.catalog import columns
from sciti.risk.models.matrix import row_matrix, to_matrix

ARTEFACT_FORMAT = "sciti-lightgbm/1"


@dataclass(frozen=True)
class Factor:
    feature: str
    value: Any
    contribution: float
    text: str


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
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)

    def contributions(self, data: Any) -> np.ndarray:
        """Rows x (features + 1) TreeSHAP contributions (last column: base value), log-odds."""
        x = self.matrix(data)
        if x.shape[0] == 0:  # LightGBM divides by the row count
            return np.empty((0, len(self.feature_names) + 1))
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)

    def explain(
        self, data: pa.Table | list[dict[str, Any]] | dict[str, Any], top: int = 5
    ) -> list[list[Factor]]:
        """Top ``top`` factors per row, largest effect first, each in words an officer can act on."""
        rows = _rows(data)
        contrib = self.contributions(data)
        names = self.feature_names
        out: list[list[Factor]] = []
        for i, row in enumerate(rows):
            c = contrib[i, :-1]
            order = np.argsort(-np.abs(c), kind="stable")[:top]
            factors = []
            filled = _filled(row)
            for j in order:
                if c[j] == 0.0:
                    continue
                name, value = names[j], float(c[j])
                text = describe(self.kind, name, row, value, filled)
                factors.append(Factor(name, _plain(row.get(name)), value, text))
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


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    """The record's values for the templates (a missing one reads "?")."""
    return {k: ("?" if v is None else v) for k, v in row.items()}


def describe(
    kind: str, name: str, row: dict[str, Any], contribution: float, filled: dict[str, Any] | None = None
) -> str:
    """One factor in words: the feature's template filled from the record, then its effect."""
    info = columns(kind).get(name)
    value = row.get(name)
    effect = f"(contributes {contribution:+.2f})"
    if value is None:
        label = info.description.rstrip(".") if info else name.replace("_", " ")
        return f"Missing: {label} {effect}"
    template = info.explain if info and info.explain else None
    if isinstance(value, bool) and not value:
        template = info.explain_no if info and info.explain_no else None
    if template:
        try:
            return f"{template.format(**(filled or _filled(row)), value=value)} {effect}"
        except (ValueError, TypeError, KeyError, IndexError):
            pass
    label = name.replace("_", " ").capitalize()
    return f"{label} is {value} {effect}"
