"""A dry-run's notes: what a reader of the figures must know to read them right.

Each note is kept twice, as the risk engine keeps its reasons (decision 0107): its English sentence
(``DryRunResult.notes``, what the CLI prints and the API has always given) and its code with the
values it names (``DryRunResult.note_codes``), from which a page says it in the reader's language.
The English is made from :data:`WORDS`, the same words the web's English catalogue holds as
``dry_note.<key>``, so the Chinese catalogue must name the same values (decision 0118).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sciti.risk.rules.columns import SCOPE_FIELDS
from sciti.risk.rules.definition import RuleDef, iso_moment

if TYPE_CHECKING:
    from sciti.risk.rules.dryrun import DryRunResult

CODES = ("offices_hidden", "scope_kept_none", "valid_outside", "valid_part")  # the notes' codes
UNITS = {"road_cargo_info": "road cargo records"}  # what a kind's records are called, where not "<kind>s"

# The English words of the notes, by catalogue key (``dry_note.<key>``). Counts are said with
# thousands separators; offices, scope values and dates as written.
WORDS: dict[str, str] = {
    "offices_hidden": (
        "your account sees office {office} only; the rule's scope names {offices}, which your account "
        "cannot see: of the {records} {unit} you may see in the window it kept none. The rule itself "
        "may well hit there: a dry-run by an account of {offices} or of every office shows it"
    ),
    "scope_kept_none": (
        "the scope kept none of the {records} {unit} in the window ({parts}), so the rule could not "
        "hit: check the scope's values against the data (codes as the source writes them)"
    ),
    "scope_part": "{scope} {values} kept {kept}",
    "valid_outside": (
        "the rule is valid {period}, outside the whole window ({window_from} .. {window_to}): in live "
        "use it would not have been applied to any of these records; the figures show what its "
        "condition and scope select in the window"
    ),
    "valid_part": (
        "the rule is valid {period}, only part of the window ({window_from} .. {window_to}): the "
        "figures count the whole window; in live use it applies only while valid"
    ),
    "period_from": "from {moment}",
    "period_until": "until {moment}",
    "sep_list": ", ",  # between offices, between a scope key's values
    "sep_parts": "; ",  # between scope keys
    "sep_period": " ",  # between the start and the end of a validity period
    **{f"scope.{key}": key.replace("_", " ") for fields in SCOPE_FIELDS.values() for key in fields},
}


@dataclass(frozen=True)
class Note:
    """One note: its code and the values it names (as they are: counts as numbers, offices, scope
    values and dates as written), and its English sentence."""

    code: str
    params: dict[str, Any]
    text: str

    def said(self) -> dict[str, Any]:
        """The note's code as kept beside its sentence (``note_codes``)."""
        return {"code": self.code, "params": self.params}


def plural(kind: str) -> str:
    return UNITS.get(kind, f"{kind.replace('_', ' ')}s")


def english(code: str, params: dict[str, Any]) -> str:
    """A note's English sentence from its code and values, as a page says it from ``WORDS``."""
    values = dict(params)
    sep = WORDS["sep_list"]
    if "offices" in values:
        values["offices"] = sep.join(values["offices"])
    if "records" in values:
        values["records"] = f"{values['records']:,}"
        values["unit"] = plural(values.pop("kind"))
    if "parts" in values:
        values["parts"] = WORDS["sep_parts"].join(
            WORDS["scope_part"].format(
                scope=WORDS.get(f"scope.{p['key']}", p["key"].replace("_", " ")),
                values=sep.join(p["values"]),
                kept=f"{p['kept']:,}",
            )
            for p in values["parts"]
        )
    if "valid_from" in values:
        start, end = values.pop("valid_from"), values.pop("valid_to")
        values["period"] = WORDS["sep_period"].join(
            [WORDS["period_from"].format(moment=start)] * bool(start)
            + [WORDS["period_until"].format(moment=end)] * bool(end)
        )
    return WORDS[code].format(**values)


def _note(code: str, **params: Any) -> Note:
    return Note(code, params, english(code, params))


def _offices_hidden(rule: RuleDef, result: DryRunResult, office_bound: bool) -> list[str]:
    """The offices the rule's scope names that an office-bound caller cannot see (every named one
    when their own office is not among them); [] for a caller whose rows of the kind are not
    limited to an office, or a scope without offices."""
    offices: list[str] = list(rule.scope.get("offices") or [])
    if not office_bound or not result.office or not offices or result.office in offices:
        return []
    return list(offices)


def dry_run_notes(rule: RuleDef, result: DryRunResult, *, office_bound: bool | None = None) -> list[Note]:
    """What a reader of the figures must know to read them right: a scope that kept no record of
    the window (so the rule could not hit) or, for an office-bound caller, a scope of offices they
    cannot see (the records are hidden by their binding, not missing), and a validity period that
    leaves out the window.

    Validity does not limit the dry-run (docs/risk-rules.md, *Dry-run*): a rule is valid over
    *assessment* times, the window is of *record* dates, and a dry-run exists to show what a rule
    would select before it takes effect, most often in a period that has not begun.
    """
    out: list[Note] = []
    bound = result.office is not None if office_bound is None else office_bound
    hidden = _offices_hidden(rule, result, bound)
    counted = {"records": result.records, "kind": rule.kind}
    if hidden and result.records and not result.in_scope:
        out.append(_note("offices_hidden", office=result.office, offices=hidden, **counted))
    elif rule.scope and result.records and not result.in_scope:
        parts = [
            {"key": key, "values": list(rule.scope[key]), "kept": result.scope_kept.get(key, 0)}
            for key in rule.scope
        ]
        out.append(_note("scope_kept_none", parts=parts, **counted))
    if result.window_from is None or result.window_to is None or not (rule.valid_from or rule.valid_to):
        return out
    start = datetime.combine(result.window_from, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(result.window_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    when = {
        "valid_from": iso_moment(rule.valid_from),
        "valid_to": iso_moment(rule.valid_to),
        "window_from": result.window_from.isoformat(),
        "window_to": result.window_to.isoformat(),
    }
    if (rule.valid_from and rule.valid_from >= end) or (rule.valid_to and rule.valid_to <= start):
        out.append(_note("valid_outside", **when))
    elif (rule.valid_from and rule.valid_from > start) or (rule.valid_to and rule.valid_to < end):
        out.append(_note("valid_part", **when))
    return out


__all__ = ["CODES", "UNITS", "WORDS", "Note", "dry_run_notes", "english", "plural"]
