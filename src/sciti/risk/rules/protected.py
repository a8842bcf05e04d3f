"""Need-to-know of rules: the personal and restricted fields a rule names, and who may use them.

A rule's condition is a question about records. A dry-run answers it with counts, days and record
ids, so a condition that names a field the caller sees masked (personal) or hidden (restricted)
would look that field's values up: ``document_number = 'G352540(5)'`` says whether a passport
travelled and when, and ``surname starts with 'H'``, then ``'HO'`` ... spells a masked name out. So
(decision 0080):

- writing a rule that names such fields needs the permission that shows them (``personal.unmask``
  for personal, ``intel.read`` for restricted), and so does approving it;
- a dry-run of such a rule needs that permission too, and for personal fields an explicit unmask
  with a stated purpose, exactly as the SQL path; it runs under the caller's own policy (row filters
  of their office, masks) and is audited;
- a kept dry-run is shown only to readers who could have made it.

Nothing here knows about HTTP or the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sciti.access import DataPolicy, PermissionDenied, Principal, TableNotReadable, policy_config
from sciti.lake.views import ViewRule
from sciti.model import get_kind
from sciti.risk.rules.columns import SCOPE_FIELDS, column_infos
from sciti.risk.rules.condition import names_in
from sciti.risk.rules.definition import PROTECTED_CLASSES, RuleDef, compile_condition


class ProtectedFieldsRefused(PermissionDenied):
    """A rule names fields the caller may not read in clear (or would read without unmasking)."""

    code = "protected_fields"
    http_status = 403


def protected_fields(rule: RuleDef) -> dict[str, list[str]]:
    """Classification (personal, restricted) -> the fields of that class the rule's condition and
    scope name, sorted; classes the rule does not touch are left out."""
    infos = column_infos(rule.kind)
    tree = compile_condition(rule.when, {n: i.type for n, i in infos.items()})
    names = names_in(tree) | {SCOPE_FIELDS.get(rule.kind, {})[k] for k in rule.scope}
    out: dict[str, list[str]] = {}
    for name in sorted(names):
        info = infos.get(name)
        if info is not None and info.classification in PROTECTED_CLASSES:
            out.setdefault(info.classification, []).append(name)
    return out


def permission_for(classification: str) -> str:
    """The permission that shows fields of ``classification`` in clear (from the data policy)."""
    config = policy_config()
    return config.unmask_permission if classification == "personal" else config.restricted_permission


def missing_permissions(permissions: frozenset[str], fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """Permission -> the named fields it would show, for each permission not in ``permissions``."""
    out: dict[str, list[str]] = {}
    for classification, names in fields.items():
        needed = permission_for(classification)
        if needed not in permissions:
            out.setdefault(needed, []).extend(names)
    return out


def check_may_name(
    username: str, permissions: frozenset[str], rule: RuleDef, *, step: str
) -> dict[str, list[str]]:
    """Refuse ``step`` (write, approve) of a rule naming fields ``username`` may not see in clear.

    Returns the protected fields the rule names (for the audit trail: names only, never values).
    """
    fields = protected_fields(rule)
    missing = missing_permissions(permissions, fields)
    if missing:
        names = sorted({n for ns in missing.values() for n in ns})
        raise ProtectedFieldsRefused(
            f"rule {rule.id!r} names {_classes(fields, names)} {', '.join(names)}, which your roles may "
            f"not read in clear: you may not {step} it",
            remedy=f"leave these fields out of the condition, or ask for a role with "
            f"{' and '.join(repr(p) for p in sorted(missing))}",
            details={"fields": names, "permissions": sorted(missing), "step": step},
        )
    return fields


def _classes(fields: dict[str, list[str]], names: list[str]) -> str:
    found = [c for c in PROTECTED_CLASSES if set(fields.get(c, ())) & set(names)]
    return " and ".join(found) + " field" + ("s" if len(names) > 1 else "")


def source_tables(kind: str) -> list[str]:
    """The lake tables a dry-run of ``kind`` reads its subjects from."""
    return ["std.declarations", "std.declaration_items"] if kind == "declaration" else [get_kind(kind).ident]


@dataclass
class DryRunAccess:
    """Whose dry-run it is: the caller's policy (row filters of their office, masks) and what they
    were allowed to see in clear. The dry-run reads the lake only through :meth:`view_rules`."""

    principal: Principal
    policy: DataPolicy
    fields: dict[str, list[str]] = field(default_factory=dict)  # protected fields the rule names
    purpose: str | None = None

    @property
    def office(self) -> str | None:
        """The office the figures are limited to (the caller's), None for every office."""
        return self.principal.office_code or None

    @property
    def unmasked(self) -> list[str]:
        """Personal fields the dry-run read in clear."""
        return list(self.fields.get("personal", ())) if self.policy.unmask else []

    def view_rules(self, tables: set[str]) -> dict[str, ViewRule]:
        """Row filters and masks of ``tables`` (and the tables their filters read) for this caller."""
        return self.policy.rules(tables)

    def row_filtered(self, tables: list[str]) -> bool:
        """Whether the caller sees only some rows of ``tables`` (an office-bound account)."""
        rules = self.view_rules(set(tables))
        return any(rules[t].row_filter for t in tables if t in rules)


def authorize_dry_run(
    principal: Principal, rule: RuleDef, *, unmask: bool = False, purpose: str | None = None
) -> DryRunAccess:
    """The caller's access for a dry-run of ``rule``, or the reason they may not make it.

    - The record kind's tables must be readable by the caller (the same need-to-know as the SQL
      path: a table one may not read answers like one that does not exist).
    - Restricted fields in the rule need ``intel.read``; there is no purpose that stands in for it.
    - Personal fields need ``unmask`` with a stated purpose and ``personal.unmask``, as the SQL path:
      without them the dry-run would be a lookup of masked values.
    """
    fields = protected_fields(rule)
    personal = fields.get("personal", [])
    restricted = fields.get("restricted", [])
    # Unmask only when a personal field is named: nothing else would be read in clear.
    policy = DataPolicy(principal, unmask=unmask and bool(personal), purpose=purpose)
    tables = source_tables(rule.kind)
    hidden = [t for t in tables if not policy.can_read(t)]
    if hidden:
        raise TableNotReadable(
            f"table {hidden[0]} does not exist or your roles ({', '.join(principal.roles)}) may not read "
            f"it: a dry-run of a {rule.kind} rule reads it",
            remedy="ask for a role whose duty needs these records; `sciti tables` lists what you may read",
            details={"table": hidden[0]},
        )
    missing = missing_permissions(principal.permissions, {"restricted": restricted} if restricted else {})
    if missing:
        raise ProtectedFieldsRefused(
            f"the condition names restricted field{'s' if len(restricted) > 1 else ''} "
            f"{', '.join(restricted)}, hidden from your roles: a dry-run would look their values up",
            remedy="leave them out of the condition, or ask for a role with "
            f"{permission_for('restricted')!r}",
            details={"fields": restricted, "permissions": sorted(missing)},
        )
    if personal and not policy.unmask:
        needed = permission_for("personal")
        can = principal.can(needed)
        raise ProtectedFieldsRefused(
            f"the condition names personal field{'s' if len(personal) > 1 else ''} {', '.join(personal)}, "
            f"masked for you: a dry-run would look their values up",
            remedy=(
                'to read them in clear for a stated purpose (audited), send "unmask": true and a "purpose"'
                if can
                else f"leave them out of the condition, or ask for a role with {needed!r}"
            ),
            details={"fields": personal, "permissions": [needed]},
        )
    return DryRunAccess(principal, policy, fields, policy.purpose)


def shown_dry_run(
    result: dict[str, Any], fields: dict[str, list[str]], reader: Principal
) -> tuple[dict[str, Any], str | None]:
    """A kept dry-run as ``reader`` may see it: (figures, None), or ({}, why they are withheld).

    The figures were made under their author's scope and permissions. A reader sees them only if
    they could have made the same dry-run: their office (if any) is the one the figures cover, and
    they may read every protected field the rule names. Dry-runs kept before the office was
    recorded count as covering every office.
    """
    office = result.get("office")
    if reader.office_code and office != reader.office_code:
        return {}, f"made over {'every office' if office is None else 'another office'}, not yours"
    missing = missing_permissions(reader.permissions, fields)
    if missing:
        needs = ", ".join(sorted(missing))
        return {}, f"the rule names fields your roles may not read in clear (needs {needs})"
    return result, None


__all__ = [
    "DryRunAccess",
    "ProtectedFieldsRefused",
    "authorize_dry_run",
    "check_may_name",
    "missing_permissions",
    "permission_for",
    "protected_fields",
    "shown_dry_run",
    "source_tables",
]
