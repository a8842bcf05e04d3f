"""A rule definition as analysts write it (YAML), checked and turned into a ``RuleDef``.

Every name in ``when:`` and in the reason must be a field or feature of the rule's record kind
(``sciti.risk.features.columns``); errors carry the field, line and column and say what to write.
``canonical_yaml`` is the one spelling a definition is stored and diffed in.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import yaml

from sciti.risk.features.national import PLACEHOLDERS
from sciti.risk.rules.columns import SCOPE_FIELDS, SUBJECT_KINDS, column_infos, column_types
from sciti.risk.rules.condition import Node, check_types, parse_condition, syntax_error
from sciti.risk.rules.errors import RuleSyntaxError

LANES = ("green", "yellow", "red", "blue")
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KEYS = (
    "id",
    "title",
    "kind",
    "description",
    "scope",
    "valid_from",
    "valid_to",
    "when",
    "weight",
    "lane",
    "reason",
    "author",
    "enabled",
)
# Names a reason may use beyond the columns: who and what the record is, and the national currency
# and cash reporting threshold the settings give (decision 0111).
REASON_EXTRA = ("record_id", *PLACEHOLDERS)
PROTECTED_CLASSES = ("personal", "restricted")  # never quoted in a reason
# A reason's format spec (Python's mini-language, without nested fields) and its bounds: a reason
# is rendered for every hit and stored with every assessment, so `{hs6:>99999999}` (100 MB a hit)
# is refused when the rule is checked, not met at scoring time.
FORMAT_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?[+\- ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?"
    r"[bcdeEfFgGnosxX%]?",
    re.DOTALL,
)
MAX_FORMAT_WIDTH = 100
MAX_FORMAT_PRECISION = 20


@dataclass(frozen=True)
class RuleDef:
    """One checked rule definition (content of one version; immutable)."""

    id: str
    title: str
    kind: str
    when: str
    reason: str
    weight: float | None = None
    lane: str | None = None
    description: str = ""
    scope: dict[str, tuple[str, ...]] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    author: str = ""
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the canonical key order (None and empty values left out)."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "description": self.description or None,
            "scope": {k: list(v) for k, v in self.scope.items()} or None,
            "valid_from": iso_moment(self.valid_from),
            "valid_to": iso_moment(self.valid_to),
            "when": self.when,
            "weight": _plain_number(self.weight),
            "lane": self.lane,
            "reason": self.reason,
            "author": self.author or None,
            "enabled": None if self.enabled else False,
        }
        return {k: v for k, v in out.items() if v is not None}

    def active_at(self, at: datetime) -> bool:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if self.valid_from and at < self.valid_from:
            return False
        return not (self.valid_to and at >= self.valid_to)


def _plain_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def iso_moment(value: datetime | None) -> str | None:
    """A validity bound as rules spell it: a date for UTC midnight, else a UTC time."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value.time() == datetime.min.time():
        return value.date().isoformat()
    return value.isoformat().replace("+00:00", "Z")


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def canonical_yaml(rule: RuleDef) -> str:
    """The stored spelling of a definition: fixed key order, so diffs show only real changes."""
    data = rule.to_dict()
    if "\n" in data["when"]:
        data["when"] = data["when"].strip("\n") + "\n"
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _field_error(name: str, message: str, remedy: str, lines: dict[str, int]) -> RuleSyntaxError:
    line = lines.get(name, 1)
    return RuleSyntaxError(
        f"{name} (line {line}): {message}", remedy=remedy, details={"field": name, "line": line, "column": 1}
    )


def _key_lines(text: str) -> dict[str, int]:
    """Line of each top-level key in the YAML text (for error positions)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


# A rule is read by people before it is approved: 64 KiB is pages of conditions. Longer text is a
# mistake or an attack, and reading it (YAML in pure Python) holds a request for seconds.
MAX_RULE_CHARS = 65_536


def _check_size(size: int) -> None:
    if size > MAX_RULE_CHARS:
        raise RuleSyntaxError(
            f"the rule is {size:,} characters long; a rule may have at most {MAX_RULE_CHARS:,}",
            remedy="split it into several rules, or put long lists of values in a watch list",
            details={"field": "yaml", "line": 1, "column": 1},
        )


def load_rule_text(text: str) -> tuple[dict[str, Any], dict[str, int]]:
    """YAML text -> (mapping, key lines); RuleSyntaxError with the YAML position when unreadable."""
    _check_size(len(text))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleSyntaxError(
            f"the rule is not valid YAML at line {line} column {column}: {getattr(exc, 'problem', exc)}",
            remedy="check indentation and quoting; docs/risk-rules.md has complete examples",
            details={"field": "yaml", "line": line, "column": column},
        ) from None
    if not isinstance(data, dict):
        raise RuleSyntaxError(
            "a rule is a YAML mapping (id:, title:, kind:, when:, weight: or lane:, reason:)",
            remedy="start from an example in docs/risk-rules.md",
            details={"field": "yaml", "line": 1, "column": 1},
        )
    return data, _key_lines(text)


def _as_datetime(value: Any, name: str, lines: dict[str, int]) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # kept in UTC: the canonical form says the moment one way
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value.strip().replace("Z", "+00:00")), name, lines)
        except ValueError:
            pass
    raise _field_error(
        name, f"{value!r} is not a date", "write a date like 2026-01-31 (or a UTC time)", lines
    )


def _text(data: dict[str, Any], name: str, lines: dict[str, int], *, required: bool = True) -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _field_error(name, "is missing", f"add `{name}:` to the rule", lines)
        return ""
    if not isinstance(value, str | int | float):
        raise _field_error(name, "must be text", f"write {name} as one line of text", lines)
    return str(value).strip() if name != "when" else str(value)


def _scope(raw: Any, kind: str, lines: dict[str, int]) -> dict[str, tuple[str, ...]]:
    if raw in (None, {}):
        return {}
    if not isinstance(raw, dict):
        raise _field_error(
            "scope", "must be a mapping", "e.g. scope: {offices: [KRINC], procedures: ['4000']}", lines
        )
    allowed = SCOPE_FIELDS.get(kind, {})
    scope: dict[str, tuple[str, ...]] = {}
    for key, values in raw.items():
        if key not in ("offices", "modes_of_transport", "procedures"):
            raise _field_error(
                "scope", f"unknown scope {key!r}", "use offices, modes_of_transport or procedures", lines
            )
        if key not in allowed:
            raise _field_error(
                "scope",
                f"{kind} records carry no {key.replace('_', ' ')}",
                f"this kind can be scoped by: {', '.join(allowed) or 'nothing (leave scope out)'}",
                lines,
            )
        items = values if isinstance(values, list) else [values]
        clean = tuple(str(v).strip() for v in items if v is not None and str(v).strip())
        if clean:
            scope[key] = clean
    return scope


def _check_reason(reason: str, kind: str, columns: dict[str, str], lines: dict[str, int]) -> None:
    try:
        parts = list(string.Formatter().parse(reason))
    except ValueError as exc:
        raise _field_error(
            "reason",
            f"the reason template is malformed: {exc}",
            "write {name} or {name:.0%}; use {{ for a brace",
            lines,
        ) from None
    infos = column_infos(kind)
    for _, name, spec, _ in parts:
        if name is None:
            continue
        _check_format_spec(name, spec or "", lines)
        if name not in columns and name not in REASON_EXTRA:
            raise _field_error(
                "reason",
                f"the reason mentions {{{name}}}, which is not a field or feature of this kind",
                f"use a field or feature of {kind} records (GET /api/v1/rule-columns/{kind}), or "
                + ", ".join(f"{{{extra}}}" for extra in REASON_EXTRA),
                lines,
            )
        # Reasons are stored with every assessment and shown to everyone who works the queue,
        # unmasked: a person's name or document number must not travel in them.
        info = infos.get(name)
        if info is not None and info.classification in PROTECTED_CLASSES:
            raise _field_error(
                "reason",
                f"the reason mentions {{{name}}}, which is {info.classification} data: reasons are "
                "shown unmasked to everyone who works the queue",
                "name the record by its reference instead; officers open the record to see the person "
                "(masked unless their role may unmask)",
                lines,
            )


def _check_format_spec(name: str, spec: str, lines: dict[str, int]) -> None:
    """Refuse a format spec Python cannot apply, or one whose width or precision would make a
    reason longer than a sentence."""
    found = FORMAT_SPEC.fullmatch(spec)
    if found is None:
        raise _field_error(
            "reason",
            f"{{{name}:{spec}}} has a format Python cannot apply",
            "write e.g. {name}, {name:.0%}, {name:,.0f} or {name:>10}; use {{ for a brace",
            lines,
        )
    width, precision = int(found["width"] or 0), int(found["precision"] or 0)
    too_large = [
        f"{what} of {value}"
        for what, value, bound in (
            ("a width", width, MAX_FORMAT_WIDTH),
            ("a precision", precision, MAX_FORMAT_PRECISION),
        )
        if value > bound
    ]
    if too_large:
        raise _field_error(
            "reason",
            f"{{{name}:{spec}}} asks for {' and '.join(too_large)}: a reason is one sentence, "
            "rendered for every hit",
            f"use a width of at most {MAX_FORMAT_WIDTH} and a precision of at most {MAX_FORMAT_PRECISION}",
            lines,
        )


def parse_rule(source: str | dict[str, Any], *, author: str | None = None) -> RuleDef:
    """Check a rule definition (YAML text or a mapping) and return it; RuleSyntaxError says where."""
    data, lines = load_rule_text(source) if isinstance(source, str) else (dict(source), {})
    if not isinstance(source, str):
        _check_size(sum(len(str(v)) for v in data.values()))
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise _field_error(unknown[0], "is not a rule field", f"rule fields are: {', '.join(KEYS)}", lines)
    rule_id = _text(data, "id", lines)
    if not RULE_ID.match(rule_id):
        raise _field_error(
            "id",
            f"{rule_id!r} is not a valid rule id",
            "use up to 64 letters, digits, '.', '_' or '-'",
            lines,
        )
    kind = _text(data, "kind", lines)
    if kind not in SUBJECT_KINDS:
        raise _field_error(
            "kind",
            f"{kind!r} is not a record kind with risk rules",
            f"use one of: {', '.join(SUBJECT_KINDS)}",
            lines,
        )
    columns = column_types(kind)
    when = _text(data, "when", lines)
    compile_condition(when, columns, line_offset=lines.get("when"))  # raises with the position
    weight, lane = data.get("weight"), data.get("lane")
    if (weight is None) == (lane is None):
        raise _field_error(
            "weight",
            "a rule has either a weight or a lane",
            "write `weight: 40` (0-100) or `lane: red`",
            lines,
        )
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 100
    ):
        raise _field_error("weight", f"{weight!r} is not a number from 0 to 100", "e.g. weight: 40", lines)
    if lane is not None and lane not in LANES:
        raise _field_error("lane", f"{lane!r} is not a lane", f"use one of: {', '.join(LANES)}", lines)
    reason = _text(data, "reason", lines)
    _check_reason(reason, kind, columns, lines)
    valid_from = _as_datetime(data.get("valid_from"), "valid_from", lines)
    valid_to = _as_datetime(data.get("valid_to"), "valid_to", lines)
    if valid_from and valid_to and valid_to <= valid_from:
        raise _field_error("valid_to", "ends before it starts", "valid_to must be after valid_from", lines)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _field_error(
            "enabled", "must be true or false", "write enabled: false to retire the rule", lines
        )
    return RuleDef(
        id=rule_id,
        title=_text(data, "title", lines),
        kind=kind,
        when=when.strip("\n") if "\n" in when.strip() else when.strip(),
        reason=reason,
        weight=float(weight) if weight is not None else None,
        lane=lane,
        description=_text(data, "description", lines, required=False),
        scope=_scope(data.get("scope"), kind, lines),
        valid_from=valid_from,
        valid_to=valid_to,
        author=author or _text(data, "author", lines, required=False),
        enabled=enabled,
    )


def compile_condition(when: str, columns: dict[str, str], *, line_offset: int | None = None) -> Node:
    """Parse and type-check a condition; positions are relative to the condition text."""
    try:
        tree = parse_condition(when)
        check_types(tree, columns)
    except RuleSyntaxError as exc:
        if line_offset is not None:
            exc.details["rule_line"] = line_offset
        raise
    return tree


__all__ = [
    "LANES",
    "RuleDef",
    "canonical_yaml",
    "compile_condition",
    "iso_moment",
    "load_rule_text",
    "parse_rule",
    "syntax_error",
]
