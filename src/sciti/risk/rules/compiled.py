"""A rule definition compiled once: SQL for tables, a Python callable for one record, the reason text.

``sql`` is the NULL-safe condition (TRUE only where the condition is true); ``scope_sql`` the scope.
``matches(record)`` is the condition, ``in_scope(record)`` the scope; a rule hits a record when both
hold. Both sides give the same answer on every record (tests/risk/rules/test_parity.py).
``reason_template`` is the analyst's reason with the instance's national currency and cash threshold
written in (decision 0111), so batch and real time fill in only the record's own values.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sciti.risk.features.national import DEFAULT, National
from sciti.risk.rules.columns import SCOPE_FIELDS, column_types
from sciti.risk.rules.condition import referenced_types
from sciti.risk.rules.definition import RuleDef, compile_condition
from sciti.risk.rules.python import as_text, condition_python
from sciti.risk.rules.sql import condition_sql, in_list_sql

_FORMATTER = string.Formatter()


def compile_sql(rule: RuleDef, table: str | None = None) -> str:
    """The rule's condition as a NULL-safe DuckDB boolean expression (never NULL)."""
    columns = column_types(rule.kind)
    tree = compile_condition(rule.when, columns)
    return f"COALESCE({condition_sql(tree, referenced_types(tree, columns), table)}, FALSE)"


def compile_python(rule: RuleDef) -> Callable[[dict[str, Any]], bool]:
    """The rule's condition as a function of one record: True only where the condition is true."""
    columns = column_types(rule.kind)
    tree = compile_condition(rule.when, columns)
    fn = condition_python(tree, referenced_types(tree, columns))
    return lambda record: fn(record) is True


def scope_sql(rule: RuleDef, table: str | None = None) -> str:
    """The rule's scope as SQL (TRUE when the rule has no scope); a missing value is out of scope."""
    fields = SCOPE_FIELDS.get(rule.kind, {})
    parts = [in_list_sql(fields[key], values, table) for key, values in rule.scope.items()]
    return "COALESCE(" + " AND ".join(parts) + ", FALSE)" if parts else "TRUE"


def _render_value(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        try:
            return format(float(value), spec)
        except (TypeError, ValueError):
            return str(value)


def render_reason(template: str, record: dict[str, Any]) -> str:
    """The reason with the record's values in it; a missing value reads 'unknown', never an error."""
    out: list[str] = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        out.append(literal)
        if name is None:
            continue
        value = record.get(name)
        if conversion:
            value = as_text(value)
        out.append(_render_value(value, spec or ""))
    return "".join(out)


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def national_reason(template: str, national: National) -> str:
    """``template`` with ``{national_currency}`` and ``{cash_reporting_threshold}`` (any format
    spec) written in as ``national`` says them; the record's fields stay placeholders."""
    words = national.words
    out: list[str] = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        out.append(_escaped(literal))
        if name is None:
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        out.append(_escaped(render_reason(field, words)) if name in words else field)
    return "".join(out)


@dataclass(frozen=True)
class CompiledRule:
    """One approved rule version, ready to run (see the contract in the engine's ruleset)."""

    rule_id: str
    version: int
    kind: str
    title: str
    weight: float | None
    lane: str | None
    reason_template: str  # the national currency and threshold written in (national_reason)
    sql: str
    scope_sql: str
    definition: RuleDef
    _condition: Callable[[dict[str, Any]], bool]
    _scope: tuple[tuple[str, frozenset[str]], ...]

    def matches(self, record: dict[str, Any]) -> bool:
        return self._condition(record)

    def in_scope(self, record: dict[str, Any]) -> bool:
        for field, allowed in self._scope:
            value = as_text(record.get(field))
            if value is None or value not in allowed:
                return False
        return True

    def hits(self, record: dict[str, Any]) -> bool:
        return self.in_scope(record) and self.matches(record)

    def reason(self, record: dict[str, Any]) -> str:
        return render_reason(self.reason_template, record)

    def active_at(self, at: Any) -> bool:
        return self.definition.active_at(at)


def compile_rule(rule: RuleDef, version: int = 0, national: National = DEFAULT) -> CompiledRule:
    """``rule`` ready to run where ``national`` is the settings' currency and cash threshold."""
    fields = SCOPE_FIELDS.get(rule.kind, {})
    return CompiledRule(
        rule_id=rule.id,
        version=version,
        kind=rule.kind,
        title=rule.title,
        weight=rule.weight,
        lane=rule.lane,
        reason_template=national_reason(rule.reason, national),
        sql=compile_sql(rule),
        scope_sql=scope_sql(rule),
        definition=rule,
        _condition=compile_python(rule),
        _scope=tuple((fields[k], frozenset(v)) for k, v in rule.scope.items()),
    )


__all__ = [
    "CompiledRule",
    "compile_python",
    "compile_rule",
    "compile_sql",
    "national_reason",
    "render_reason",
    "scope_sql",
]
