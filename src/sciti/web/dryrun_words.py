"""A rule dry-run's notes in the reader's language, said from the codes kept beside them.

The rule engine keeps each note twice, line for line: its English sentence (``notes``) and its code
with the values it names (``note_codes``, sciti/risk/rules/dryrun_notes.py). A Chinese page says a
note from its code with the catalogue's words (``dry_note.*``); offices, scope values and dates are
shown as written and marked as data, counts with thousands separators, as the English. A note
without a code (figures kept before codes were, or a code this page does not know) is shown as the
engine wrote it, marked ``data-untranslated="engine"``. The page's script says the notes of a
dry-run it has just made the same way, from :func:`note_words` (static/app.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from sciti.risk.rules.dryrun_notes import CODES, WORDS
from sciti.web.i18n import DEFAULT, Translator, keep


@dataclass(frozen=True)
class NoteShown:
    html: Markup
    translated: bool  # False: the engine's English sentence


def _joined(t: Translator, sep: str, parts: list[Any]) -> Markup:
    return escape(t(f"dry_note.{sep}")).join(parts)


def _word(t: Translator, key: str) -> str:
    if not t.has(f"dry_note.{key}"):
        raise KeyError(key)
    return t(f"dry_note.{key}")


def note_said(t: Translator, said: Any) -> Markup | None:
    """One note in the reader's language from its code; None for a code (or values) it does not know."""
    if (
        not isinstance(said, dict)
        or said.get("code") not in CODES
        or not isinstance(said.get("params"), dict)
    ):
        return None
    p = said["params"]
    try:
        values: dict[str, Any] = {}
        if "office" in p:
            values["office"] = keep(p["office"])
        if "offices" in p:
            values["offices"] = _joined(t, "sep_list", [keep(o) for o in p["offices"]])
        if "records" in p:
            values["records"] = f"{int(p['records']):,}"
            values["unit"] = t(f"kind.{p['kind']}")
        if "parts" in p:
            values["parts"] = _joined(
                t,
                "sep_parts",
                [
                    t(
                        "dry_note.scope_part",
                        scope=_word(t, f"scope.{part['key']}"),
                        values=_joined(t, "sep_list", [keep(v) for v in part["values"]]),
                        kept=f"{int(part['kept']):,}",
                    )
                    for part in p["parts"]
                ],
            )
        if "valid_from" in p:
            period = [t("dry_note.period_from", moment=keep(p["valid_from"]))] if p["valid_from"] else []
            period += [t("dry_note.period_until", moment=keep(p["valid_to"]))] if p.get("valid_to") else []
            values["period"] = _joined(t, "sep_period", period)
            values["window_from"], values["window_to"] = keep(p["window_from"]), keep(p["window_to"])
        return escape(t(f"dry_note.{said['code']}", **values))
    except (KeyError, TypeError, ValueError, IndexError):  # a code of another version's engine
        return None


def notes_shown(t: Translator, notes: list[str] | None, codes: list[Any] | None) -> list[NoteShown]:
    """The notes as the page shows them: from their codes on a page in another language than
    English (when the codes go line for line with the notes), else the engine's English, marked."""
    lines = list(notes or [])
    said = list(codes or []) if t.lang != DEFAULT else []
    if len(said) != len(lines):
        said = [None] * len(lines)
    out = []
    for text, code in zip(lines, said, strict=True):
        words = note_said(t, code)
        out.append(NoteShown(escape(text), False) if words is None else NoteShown(words, True))
    return out


def note_words(t: Translator, kind: str) -> dict[str, Any]:
    """The words the page's script says a note with (``dry_note.*`` without the prefix, the
    records' ``unit``) and the ``codes`` it may say; none on an English page, which shows the
    engine's sentences."""
    if t.lang == DEFAULT:
        return {}
    return {key: t(f"dry_note.{key}") for key in WORDS} | {"unit": t(f"kind.{kind}"), "codes": list(CODES)}


__all__ = ["NoteShown", "note_said", "note_words", "notes_shown"]
