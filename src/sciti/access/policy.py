"""The one policy point: what a caller may see of each lake table — tables, rows and columns.

Rules are data (``data/policy.yaml``); field classifications come from the record kinds
(``sciti.model``), and for tables made from records (``risk.assessments``, the risk reference
tables) from the policy's ``derived:`` entries. :class:`DataPolicy` turns both, for one
:class:`Principal`, into plain :class:`~sciti.lake.views.ViewRule` objects (a row filter and column
masks as SQL) that the lake applies when it creates each table's view, so the SQL path, exports,
the unmask endpoint and the web pages all see the same thing. Nothing here knows about HTTP or the
terminal.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from sciti.access.accounts import Principal
from sciti.access.errors import AccessError, PermissionDenied
from sciti.access.masking import DUCK_TYPES, METHODS, mask_sql, mask_value, new_salt, null_of
from sciti.access.roles import all_roles, check_permission_name
from sciti.lake.views import ViewRule, quote_literal
from sciti.model import RecordKind, get_kind, load_kinds

UNMASK_PERMISSION = "personal.unmask"
FOLLOWS_PARENT = "parent"  # ``rows.office_fields``: the kind follows its parent's rows
# ``rows.office_fields`` entry {follows: KIND, by: [FIELDS]}, kept as ("follows:KIND", *FIELDS): a
# row is the office's when one of FIELDS holds the key of a KIND row the account sees.
FOLLOWS = "follows:"


@dataclass(frozen=True)
class TableRule:
    match: str
    any_of: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class DerivedTable:
    """A lake table made from records (not a record kind): what it holds, for access (``derived:``)."""

    ident: str
    kind: str | None = None  # the record kind it is made from: that kind's need-to-know applies
    personal: tuple[tuple[str, str], ...] = ()  # (column, model type) of its personal columns
    office_column: str | None = None  # office-bound accounts see their office's rows
    every_office: bool = False  # aggregates over every office: not for office-bound accounts
    why: str = ""


@dataclass(frozen=True)
class Classified:
    """One classified column of a table: its name, model type and classification."""

    name: str
    type: str
    classification: str


_DERIVED_KEYS = {"kind", "personal", "office_column", "every_office", "why"}


@dataclass(frozen=True)
class PolicyConfig:
    """``data/policy.yaml``, parsed and checked."""

    tables: tuple[TableRule, ...]
    kind_requires: dict[str, tuple[str, ...]]
    unmask_permission: str
    restricted_permission: str
    mask_by_field: dict[str, str]
    mask_by_type: dict[str, str]
    office_column: str  # the office field of a kind listed nowhere in ``office_fields``
    partner_role: str
    partner_kinds: frozenset[str]
    partner_row_column: str
    kinds_by_table: dict[str, RecordKind] = field(default_factory=dict)
    derived: dict[str, DerivedTable] = field(default_factory=dict)
    # Kind -> the fields saying where its records were handled (any may hold the office), or
    # ("parent",): the kind follows its parent's rows, or (): not bound to an office.
    office_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def office_fields_of(self, kind: RecordKind) -> tuple[str, ...]:
        """Where ``kind``'s records were handled (see ``rows.office_fields`` in policy.yaml)."""
        if kind.name in self.office_fields:
            return self.office_fields[kind.name]
        if self.office_column in kind.field_names:
            return (self.office_column,)
        return (FOLLOWS_PARENT,) if kind.parent else ()


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()))


def _derived(raw: Any, kinds: dict[str, RecordKind]) -> dict[str, DerivedTable]:
    out: dict[str, DerivedTable] = {}
    for ident, entry in (raw or {}).items():
        entry = entry or {}
        where = f"policy.yaml: derived table {ident!r}"
        unknown = set(entry) - _DERIVED_KEYS
        if unknown or str(ident).count(".") != 1 or str(ident) != str(ident).lower():
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} or not a lower-case zone.name")
        kind = entry.get("kind")
        if kind is not None and kind not in kinds:
            raise ValueError(f"{where}: unknown kind {kind!r}")
        personal = tuple((str(c), str(t)) for c, t in (entry.get("personal") or {}).items())
        if any(t not in DUCK_TYPES for _, t in personal):
            raise ValueError(f"{where}: personal column types must be among {sorted(DUCK_TYPES)}")
        out[str(ident)] = DerivedTable(
            ident=str(ident),
            kind=None if kind is None else str(kind),
            personal=personal,
            office_column=None if entry.get("office_column") is None else str(entry["office_column"]),
            every_office=bool(entry.get("every_office", False)),
            why=str(entry.get("why", "")),
        )
    return out


def _office_fields(rows: dict[str, Any], kinds: dict[str, RecordKind]) -> dict[str, tuple[str, ...]]:
    """``rows.office_fields`` and ``rows.not_office_bound``, checked against the record kinds: a
    misspelt field would bind a kind to nothing and hide it, or leave it open to every office."""
    bound = rows.get("office_fields") or {}
    unbound = rows.get("not_office_bound") or {}
    out: dict[str, tuple[str, ...]] = {str(k): () for k in unbound}
    for name, value in bound.items():
        where = f"policy.yaml: rows.office_fields.{name}"
        kind = kinds.get(str(name))
        if kind is None or name in unbound:
            raise ValueError(f"{where}: unknown kind, or also listed in not_office_bound")
        if isinstance(value, dict):
            target = kinds.get(str(value.get("follows")))
            by = _strs(value.get("by"))
            if set(value) != {"follows", "by"} or target is None or not by:
                raise ValueError(f"{where}: write {{follows: KIND, by: [FIELDS]}} with a known kind")
            if any(f not in kind.field_names for f in by):
                raise ValueError(f"{where}: {list(by)} are not all fields of {name!r}")
            out[str(name)] = (FOLLOWS + target.name, *by)
            continue
        fields = (str(value),) if isinstance(value, str) else _strs(value)
        if fields == (FOLLOWS_PARENT,):
            if kind.parent is None:
                raise ValueError(f"{where}: {name!r} has no parent kind to follow")
        elif not fields or any(f not in kind.field_names for f in fields):
            raise ValueError(f"{where}: {list(fields)} are not all fields of {name!r}")
        out[str(name)] = fields
    unknown = set(unbound) - set(kinds)
    if unknown:
        raise ValueError(f"policy.yaml: rows.not_office_bound: unknown kinds {sorted(unknown)}")
    return out


@lru_cache(maxsize=1)
def policy_config() -> PolicyConfig:
    raw = yaml.safe_load(resources.files("sciti.access").joinpath("data/policy.yaml").read_text("utf-8"))
    tables = tuple(
        TableRule(str(t["match"]), _strs(t.get("any_of")), _strs(t.get("roles")), str(t.get("why", "")))
        for t in raw["tables"]
    )
    kinds = load_kinds()
    kind_requires = {str(k): _strs(v.get("requires")) for k, v in (raw.get("kinds") or {}).items()}
    classes = raw["classifications"]
    masking = raw["masking"]
    by_field = {str(k): str(v) for k, v in (masking.get("by_field") or {}).items()}
    by_type = {str(k): str(v) for k, v in (masking.get("by_type") or {}).items()}
    config = PolicyConfig(
        tables=tables,
        kind_requires=kind_requires,
        unmask_permission=str(classes["personal"]["unmask"]),
        restricted_permission=str(classes["restricted"]["requires"]),
        mask_by_field=by_field,
        mask_by_type=by_type,
        office_column=str(raw["rows"]["office_column"]),
        partner_role=str(raw["partner"]["role"]),
        partner_kinds=frozenset(_strs(raw["partner"].get("kinds"))),
        partner_row_column=str(raw["partner"]["row_column"]),
        kinds_by_table={k.ident: k for k in kinds.values()},
        derived=_derived(raw.get("derived"), kinds),
        office_fields=_office_fields(raw["rows"], kinds),
    )
    # A typo in the policy must fail at start-up, not silently open or close access.
    for perm in (
        *(p for t in tables for p in t.any_of),
        *(p for ps in kind_requires.values() for p in ps),
        config.unmask_permission,
        config.restricted_permission,
    ):
        check_permission_name(perm)
    roles = {r for t in tables for r in t.roles} | {config.partner_role}
    if roles - set(all_roles()):
        raise ValueError(f"policy.yaml: unknown roles {sorted(roles - set(all_roles()))}")
    clash = set(config.derived) & set(config.kinds_by_table)
    if clash:
        raise ValueError(f"policy.yaml: derived tables {sorted(clash)} are record kinds' tables")
    unknown = (set(kind_requires) | config.partner_kinds) - set(kinds)
    bad_methods = {m for m in (*by_field.values(), *by_type.values()) if m not in METHODS}
    if unknown or bad_methods:
        raise ValueError(f"policy.yaml: unknown kinds {sorted(unknown)} or methods {sorted(bad_methods)}")
    return config


class DataPolicy:
    """What one principal sees, for one query (the pseudonym salt is made per instance).

    ``unmask=True`` shows personal fields in clear; it needs ``personal.unmask`` and a purpose.
    """

    def __init__(self, principal: Principal, *, unmask: bool = False, purpose: str | None = None):
        self.principal = principal
        self.config = policy_config()
        self.purpose = (purpose or "").strip() or None
        if unmask:
            if not principal.can(self.config.unmask_permission):
                raise PermissionDenied(
                    f"your roles ({', '.join(principal.roles) or 'none'}) may not unmask personal data",
                    remedy=f"ask for a role with {self.config.unmask_permission!r}, or query without unmask",
                    details={"permission": self.config.unmask_permission},
                )
            if self.purpose is None:
                raise AccessError(
                    "unmasking personal data needs a stated purpose",
                    remedy='say why, e.g. "purpose": "case 2026-114: identify the courier"',
                )
        self.unmask = unmask
        self.salt = new_salt()

    # -- need-to-know -------------------------------------------------------------------------
    @property
    def is_partner(self) -> bool:
        return self.config.partner_role in self.principal.roles

    def kind_of(self, ident: str) -> RecordKind | None:
        return self.config.kinds_by_table.get(ident)

    def can_read(self, ident: str) -> bool:
        ident = ident.lower()
        kind = self.kind_of(ident)
        if self.is_partner and not self.principal.can("sql.query"):
            return kind is not None and kind.name in self.config.partner_kinds
        rule = next((t for t in self.config.tables if fnmatch.fnmatchcase(ident, t.match)), None)
        if rule is None:
            return False
        p = self.principal
        if rule.any_of and not any(p.can(x) for x in rule.any_of):
            return False
        if rule.roles and not any(r in p.roles for r in rule.roles):
            return False
        return self._content_allowed(ident)

    def _content_allowed(self, ident: str) -> bool:
        """The need-to-know of what a table holds, on top of its table rule: its record kind's
        ``requires`` (a derived table: those of the kind it is made from), and for office-bound
        accounts no table of every office's figures."""
        kind = self.kind_of(ident)
        derived = self.config.derived.get(ident)
        if derived is not None:
            if derived.every_office and self.principal.office_code:
                return False
            kind = load_kinds().get(derived.kind or "")
        if kind is None:
            return True
        return all(self.principal.can(x) for x in self.config.kind_requires.get(kind.name, ()))

    def classified(self, ident: str) -> list[Classified]:
        """The classified columns of a table: a record kind's fields (``internal`` ones included),
        or a derived table's ``personal`` columns. Empty for tables that declare none."""
        ident = ident.lower()
        kind = self.kind_of(ident)
        if kind is not None:
            return [Classified(f.name, f.type, f.classification) for f in kind.fields]
        derived = self.config.derived.get(ident)
        return [] if derived is None else [Classified(c, t, "personal") for c, t in derived.personal]

    # -- views ---------------------------------------------------------------------------------
    def rule(self, ident: str) -> ViewRule:
        """Row filter and masks of one table.

        Callers check :meth:`can_read` first; a page that shows aggregates without ``sql.query``
        (``need_to_know=False`` in the web) may not, so what a table holds is checked here too: a
        table whose content the caller may not see shows no rows.
        """
        ident = ident.lower()
        kind = self.kind_of(ident)
        if self.is_partner and not self.principal.can("sql.query"):
            return self._partner_rule(kind) if kind is not None else ViewRule(row_filter="false")
        columns: dict[str, str] = {}
        intel = self.principal.can(self.config.restricted_permission)
        for f in self.classified(ident):
            if f.classification == "personal" and not self.unmask:
                columns[f.name] = self._mask(f.name, f.type)
            elif f.classification == "restricted" and not intel:
                columns[f.name] = null_of(f.type)
        if not self._content_allowed(ident):
            return ViewRule(row_filter="false", columns=columns)
        if kind is not None:
            row_filter, depends = self._office_filter(kind)
            return ViewRule(row_filter=row_filter, columns=columns, depends=depends)
        derived = self.config.derived.get(ident)
        office = self.principal.office_code
        if derived is not None and derived.office_column and office:
            return ViewRule(
                row_filter=f'"{derived.office_column}" = {quote_literal(office)}', columns=columns
            )
        return ViewRule(columns=columns)

    def rules(self, idents: set[str]) -> dict[str, ViewRule]:
        """Rules for ``idents`` and every table their row filters read."""
        out: dict[str, ViewRule] = {}
        todo = [i for i in idents if self.can_read(i)]
        while todo:
            ident = todo.pop()
            if ident in out:
                continue
            out[ident] = self.rule(ident)
            todo.extend(d for d in out[ident].depends if d not in out)
        return out

    def mask_record(self, ident: str, record: dict[str, Any]) -> dict[str, Any]:
        """One record of ``ident`` as this caller may see it, for surfaces that do not use SQL
        (API responses built from Python objects, web pages): the same masks and hidden fields."""
        kind = self.kind_of(ident)
        if self.is_partner and not self.principal.can("sql.query") and kind is not None:
            shared = {"public", "partner_shareable"}
            hidden = {f.name for f in kind.fields if f.classification not in shared}
            return {k: (None if k in hidden else v) for k, v in record.items()}
        intel = self.principal.can(self.config.restricted_permission)
        out = dict(record)
        for f in self.classified(ident):
            if f.name not in out:
                continue
            if f.classification == "personal" and not self.unmask:
                method = self.config.mask_by_field.get(f.name) or self.config.mask_by_type.get(f.type, "null")
                out[f.name] = mask_value(method, out[f.name], f.type, self.salt)
            elif f.classification == "restricted" and not intel:
                out[f.name] = None
        return out

    def masked_fields(self, ident: str) -> list[str]:
        """Personal fields of a table shown masked (empty when unmasked or unclassified)."""
        return [] if self.unmask else self.personal_fields(ident)

    def personal_fields(self, ident: str) -> list[str]:
        """Personal fields of a table: a record kind's, or a derived table's (see :meth:`classified`)."""
        return [f.name for f in self.classified(ident) if f.classification == "personal"]

    def _mask(self, name: str, field_type: str) -> str:
        method = self.config.mask_by_field.get(name) or self.config.mask_by_type.get(field_type, "null")
        return mask_sql(method, name, field_type, self.salt)

    def _office_filter(self, kind: RecordKind) -> tuple[str | None, tuple[str, ...]]:
        """An office-bound account's rows of ``kind``: those handled at its office (by the kind's
        ``rows.office_fields``), or a child kind's rows whose parent is among the parent's rows."""
        office = self.principal.office_code
        if not office:
            return None, ()
        fields = self.config.office_fields_of(kind)
        if fields == (FOLLOWS_PARENT,):
            parent = load_kinds().get(kind.parent or "")
            if parent is None:
                return "false", ()
            if self._office_filter(parent)[0] is None:
                return None, ()  # the parent is not bound to offices: nor are its children
            if not self.can_read(parent.ident):
                return "false", ()
            # The parent's view is itself filtered to the office: a child follows its parent's rows.
            return f'"parent_record_id" IN (SELECT record_id FROM {parent.ident})', (parent.ident,)
        if fields and fields[0].startswith(FOLLOWS):
            # Like a child: the other kind's view is itself filtered to the office.
            other = get_kind(fields[0][len(FOLLOWS) :])
            if self._office_filter(other)[0] is None:
                return None, ()
            if not self.can_read(other.ident):
                return "false", ()
            key = other.key[0]
            found = " OR ".join(f'"{f}" IN (SELECT "{key}" FROM {other.ident})' for f in fields[1:])
            return found, (other.ident,)
        if not fields:
            return None, ()
        code = quote_literal(office)
        return " OR ".join(f'"{f}" = {code}' for f in fields), ()

    def _partner_rule(self, kind: RecordKind) -> ViewRule:
        shared = {"public", "partner_shareable"}
        columns = {f.name: null_of(f.type) for f in kind.fields if f.classification not in shared}
        for name in ("source", "batch_id", "locator"):  # provenance tells of our systems: not shared
            columns[name] = null_of("string")
        column = self.config.partner_row_column
        code = self.principal.office_code
        if column in kind.field_names and code:
            marks = f"string_split(coalesce(\"{column}\", ''), ',')"
            row_filter = f"list_contains({marks}, {quote_literal(code)})"
        else:
            row_filter = "false"  # a kind without sharing marks shares no rows
        return ViewRule(row_filter=row_filter, columns=columns)


__all__ = [
    "UNMASK_PERMISSION",
    "Classified",
    "DataPolicy",
    "DerivedTable",
    "FOLLOWS_PARENT",
    "PolicyConfig",
    "TableRule",
    "policy_config",
]
