"""The data dictionary, generated from the record kinds so it can never drift from them.

Regenerate the committed copy with::

    python -m sciti.model.dictionary > docs/data-dictionary.md
"""

from __future__ import annotations

from sciti.model.codelists import CODELIST_NAMES
from sciti.model.identifiers import IDENTIFIER_NAMES
from sciti.model.schema import PARENT_COLUMN, PROVENANCE, FieldDef, RecordKind, load_kinds

GROUP_ORDER = (
    "declarations",
    "cargo",
    "road",
    "border",
    "persons",
    "enforcement",
    "intelligence",
    "security",
)
GROUP_TITLES = {
    "declarations": "Declarations",
    "cargo": "Cargo manifests and consignments",
    "road": "Road cargo",
    "border": "Border crossings",
    "persons": "Persons and travellers",
    "enforcement": "Enforcement",
    "intelligence": "Intelligence",
    "security": "IT security",
}


def _cell(text: str | None) -> str:
    """Markdown table cell: no pipes or line breaks."""
    return (text or "").replace("|", "\\|").replace("\n", " ").strip()


def _checks(f: FieldDef) -> str:
    parts = []
    if f.codelist:
        parts.append(f"code list `{f.codelist}` ({CODELIST_NAMES[f.codelist]})")
    if f.identifier:
        parts.append(f"identifier `{f.identifier}` ({IDENTIFIER_NAMES[f.identifier]})")
    if f.values:
        parts.append("one of " + ", ".join(f"`{v}`" for v in f.values))
    if f.max_length is not None:
        parts.append(f"at most {f.max_length} characters")
    if f.minimum is not None and f.maximum is not None:
        parts.append(f"from {f.minimum:g} to {f.maximum:g}")
    elif f.minimum is not None:
        parts.append(f"at least {f.minimum:g}")
    elif f.maximum is not None:
        parts.append(f"at most {f.maximum:g}")
    return "; ".join(parts)


def _kind_section(kind: RecordKind) -> list[str]:
    lines = [
        f"### `{kind.name}` — table `{kind.ident}`",
        "",
        _cell(kind.description),
        "",
        f"- **Key**: {', '.join(f'`{k}`' for k in kind.key) or '(none)'}",
        f"- **WCO reference**: {_cell(kind.wco) or '—'}",
    ]
    if kind.parent:
        lines.append(f"- **Belongs to**: `{kind.parent}` (through `{PARENT_COLUMN[0]}`)")
    lines += [
        "",
        "| field | type | required | checks | classification | WCO | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in kind.fields:
        lines.append(
            f"| `{f.name}` | {f.type} | {'yes' if f.required else ''} | {_cell(_checks(f))} | "
            f"{f.classification} | {_cell(f.wco)} | {_cell(f.description)} |"
        )
    lines.append("")
    return lines


def render_markdown() -> str:
    """The whole data dictionary as Markdown: provenance columns, then every kind by group."""
    kinds = load_kinds()
    groups = sorted({k.group for k in kinds.values()}, key=lambda g: (GROUP_ORDER + (g,)).index(g))
    lines = [
        "# SCITI data dictionary",
        "",
        "<!-- Generated: python -m sciti.model.dictionary > docs/data-dictionary.md (do not edit). -->",
        "",
        "Every canonical record kind stored in the lake's `std` zone, with its fields. The kinds are",
        "defined in `src/sciti/model/kinds/*.yaml`; this page is generated from them.",
        "",
        "Classifications: `public`, `internal` (default), `personal` (data about a private person,",
        "masked for roles without the need), `restricted` (intelligence and targeting information),",
        "`partner_shareable`.",
        "",
        "Code lists: `hs` — the value, without dots or spaces, must have at least six digits and its",
        "first six must be an HS 2022 subheading; `country` — ISO 3166-1 alpha-2; `currency` — ISO",
        "4217; `unlocode` — five characters whose first two are a UN/LOCODE country (the full list",
        "of locations is not shipped, so the place part is checked for form only).",
        "",
        "Checks (the column below): a record with a value that fails one is not stored; it is",
        "quarantined with its locator and the reason, e.g. `net_mass_kg: '-5' is less than 0, the",
        "smallest allowed`. Lengths of references and offices are what the officers' queue keeps.",
        "",
        "## Provenance columns",
        "",
        "Every stored row starts with these columns, ahead of its kind's fields.",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(text)} |" for name, _, text in PROVENANCE]
    lines += [
        f"| `{PARENT_COLUMN[0]}` | {_cell(PARENT_COLUMN[2])} Only in kinds that belong to another. |",
        "",
    ]
    lines += ["## Record kinds", ""]
    for group in groups:
        members = [k for k in kinds.values() if k.group == group]
        lines += [f"- **{GROUP_TITLES.get(group, group)}**: " + ", ".join(f"`{k.name}`" for k in members)]
    lines.append("")
    for group in groups:
        lines += [f"## {GROUP_TITLES.get(group, group)}", ""]
        for kind in (k for k in kinds.values() if k.group == group):
            lines += _kind_section(kind)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
