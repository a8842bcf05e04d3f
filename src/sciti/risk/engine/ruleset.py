"""The active rules of one kind, run over one record (Python) or a whole table (DuckDB SQL).

Rules come compiled from ``sciti.risk.rules`` (contract 3): ``matches``/``in_scope``/``reason``
for one record, ``sql`` for a table. A table is checked with one DuckDB statement that evaluates
every rule's condition as a column; the scope is part of the statement (``scope_sql``), or else
checked in Python with ``in_scope`` on the rows the condition hit.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from sciti.risk.engine.arrowrules import TableRules, Unsupported, condition_of
from sciti.risk.lanes import SEVERITY


class CompiledRuleLike(Protocol):
    rule_id: str
    version: int
    weight: float | None
    lane: str | None
    sql: str

    def matches(self, record: dict[str, Any]) -> bool: ...
    def in_scope(self, record: dict[str, Any]) -> bool: ...
    def reason(self, record: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    version: int
    weight: float
    lane: str | None
    reason: str


class RuleSet:
    """The rules of one kind at one moment; ``stamp`` names exactly which versions they are."""

    def __init__(self, kind: str, rules: Sequence[CompiledRuleLike]):
        self.kind = kind
        self.rules = list(rules)
        self.weights = np.array([float(r.weight or 0.0) for r in self.rules], dtype=np.float64)
        self.severity = np.array([SEVERITY[r.lane] if r.lane else -1 for r in self.rules], dtype=np.int64)
        ids = ",".join(f"{r.rule_id}@{r.version}" for r in sorted(self.rules, key=lambda r: r.rule_id))
        self.stamp = hashlib.sha256(ids.encode()).hexdigest()[:16] if ids else "none"
        self._shapes: dict[tuple[int, int], tuple[Any, Any, Any]] = {}  # see TableRules

    def __len__(self) -> int:
        return len(self.rules)

    def hits_one(self, row: dict[str, Any]) -> list[RuleHit]:
        out = []
        for rule in self.rules:
            if rule.matches(row) and rule.in_scope(row):
                out.append(self._hit(rule, row))
        return out

    @staticmethod
    def _hit(rule: CompiledRuleLike, row: dict[str, Any]) -> RuleHit:
        return RuleHit(rule.rule_id, rule.version, float(rule.weight or 0.0), rule.lane, rule.reason(row))

    def hit_matrix(self, table: pa.Table) -> np.ndarray:
        """(rows x rules) booleans: condition true (NULL counts as false) and in scope.

        Conditions run on Arrow columns (:mod:`arrowrules`, each column normalised once for all
        rules); a rule that module cannot run exactly as its SQL runs in one DuckDB statement.
        """
        n = table.num_rows
        hits = np.zeros((n, len(self.rules)), dtype=bool, order="F")  # filled column by column
        if not self.rules or n == 0:
            return hits
        evaluator = TableRules(table, self._shapes)
        in_sql: list[int] = []
        for j, rule in enumerate(self.rules):
            tree = self._trees.get(j)
            try:
                if tree is None:
                    raise Unsupported("no condition tree")
                hits[:, j] = evaluator.hits(rule, *tree)
            except (Unsupported, pa.ArrowInvalid, pa.ArrowNotImplementedError):
                in_sql.append(j)
        if in_sql:
            self._sql_hits(table, hits, in_sql)
        return hits

    @cached_property
    def _trees(self) -> dict[int, tuple[Any, dict[str, str]]]:
        out = {}
        for j, rule in enumerate(self.rules):
            try:
                out[j] = condition_of(rule)
            except Exception:  # noqa: BLE001, S112 (a rule without a tree runs as SQL)
                continue
        return out

    def _sql_hits(self, table: pa.Table, hits: np.ndarray, which: list[int]) -> None:
        cols = ", ".join(f"coalesce(({_sql(self.rules[j])}), false) AS h{j}" for j in which)
        con = duckdb.connect()
        try:
            con.register("subjects", table)
            result = con.sql(f"SELECT {cols} FROM subjects").to_arrow_table()  # noqa: S608 (compiled)
        finally:
            con.close()
        for k, j in enumerate(which):
            hits[:, j] = result.column(k).to_numpy(zero_copy_only=False)
        python_scope = [j for j in which if getattr(self.rules[j], "scope_sql", None) is None]
        rows = np.flatnonzero(hits[:, python_scope].any(axis=1)) if python_scope else np.empty(0, np.int64)
        if rows.size:
            records = table.take(pa.array(rows)).to_pylist()
            for row_index, record in zip(rows, records, strict=True):
                for j in python_scope:
                    if hits[row_index, j] and not self.rules[j].in_scope(record):
                        hits[row_index, j] = False

    def sql_hit_matrix(self, table: pa.Table) -> np.ndarray:
        """The same as :meth:`hit_matrix`, every rule in DuckDB (the reference the tests compare to)."""
        hits = np.zeros((table.num_rows, len(self.rules)), dtype=bool)
        if self.rules and table.num_rows:
            self._sql_hits(table, hits, list(range(len(self.rules))))
        return hits

    def hits_of_records(
        self, records: dict[int, dict[str, Any]], hits: np.ndarray
    ) -> dict[int, list[RuleHit]]:
        """The hits (with their reasons) of rows checked by :meth:`hit_matrix`, given as row -> record."""
        return {
            i: [self._hit(self.rules[j], record) for j in np.flatnonzero(hits[i])]
            for i, record in records.items()
        }

    def reason_fields(self) -> set[str]:
        """Every field a reason template names."""
        out: set[str] = set()
        for rule in self.rules:
            template = getattr(rule, "reason_template", "") or ""
            for _, name, _, _ in string.Formatter().parse(template):
                if name:
                    out.add(name.split(".")[0].split("[")[0])
        return out


def _sql(rule: CompiledRuleLike) -> str:
    """Condition and scope together; a rule without ``scope_sql`` is scoped in Python afterwards."""
    scope = getattr(rule, "scope_sql", None)
    return f"({rule.sql}) AND ({scope})" if scope else rule.sql


def rule_score(hits: list[RuleHit]) -> float:
    return float(min(100.0, sum(h.weight for h in hits)))


def direct_lane(hits: list[RuleHit]) -> str | None:
    lanes = [h.lane for h in hits if h.lane]
    return max(lanes, key=lambda lane: SEVERITY[lane]) if lanes else None


__all__ = ["CompiledRuleLike", "RuleHit", "RuleSet", "direct_lane", "rule_score"]
