"""Messages in English and Traditional Chinese: one YAML catalogue per language under ``i18n/``.

Keys are stable dotted names (``nav.home``); values may hold ``{name}`` placeholders. A key the
Chinese catalogue lacks falls back to English, and a key neither has shows as itself, so a gap is
visible (a test keeps both catalogues the same keys). The language comes from the ``sciti_lang``
cookie, which logging in sets from the user's saved choice, so the choice follows the person from
one browser to the next.

Generated key sets name things the pages show by their code: ``column.<name>`` (lake columns, see
``sciti.web.labels``), ``kind.<record kind>``, ``role.<role>``, ``metric.<model metric>``,
``param.<form field>``, ``error.<SCITIError code>``, ``invalid.<validation error type>``, and
``explain.<kind>.<feature>`` (also ``explain_no``, ``explain_unseen``): a model factor's sentence,
whose English is features.yaml's template, and ``dry_note.<key>``: a rule dry-run's notes, whose
English is the rule engine's (``sciti.risk.rules.dryrun_notes``).
A value shown inside a message as it is stored (a username, a model version) is passed through
:func:`keep`: the page marks it as data, never to be translated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup, escape

LANGUAGES = {"en": "English", "zh-Hant": "繁體中文"}
DEFAULT = "en"
LANG_COOKIE = "sciti_lang"
_FOLDER = Path(__file__).resolve().parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Flat ``key -> message`` of one language."""
    data = yaml.safe_load((_FOLDER / f"{lang}.yaml").read_text(encoding="utf-8")) or {}
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = str(node)

    walk("", data)
    if lang == DEFAULT:
        out |= _factor_templates() | _note_words()
    return out


def _factor_templates() -> dict[str, str]:
    """``<template>.<kind>.<feature>``: the English of a model factor's sentence is its template in
    features.yaml, kept there once; the other catalogues hold its words (decision 0118)."""
    from sciti.risk.features.catalog import SUBJECT_KINDS, columns

    out = {}
    for kind in SUBJECT_KINDS:
        for name, info in columns(kind).items():
            for form in ("explain", "explain_no", "explain_unseen"):
                text = getattr(info, form)
                if text:
                    out[f"{form}.{kind}.{name}"] = text
    return out


def _note_words() -> dict[str, str]:
    """``dry_note.<key>``: the English of a rule dry-run's notes is the rule engine's, kept there
    once; the other catalogues hold their words with the same values."""
    from sciti.risk.rules.dryrun_notes import WORDS

    return {f"dry_note.{key}": text for key, text in WORDS.items()}


def pick(cookie: str | None, accept_language: str | None = None) -> str:
    """The language to show: the cookie if valid, else the browser's first supported choice."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith(("zh-hant", "zh-tw", "zh-hk", "zh-mo")):
            return "zh-Hant"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def keep(value: Any) -> Markup:
    """A stored value inside a message (``t("risk.taken_by", who=keep(name))``), marked as data:
    shown as it is, never translated (by the page or by a browser's translator)."""
    return Markup('<span translate="no">{}</span>').format(value)


class Translator:
    """``t("nav.home")`` in templates; unknown keys show the key itself, so a gap is visible."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._messages = catalogue(self.lang)
        self._fallback = catalogue(DEFAULT)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        if not values:
            return text
        if any(isinstance(v, Markup) for v in values.values()):  # keep(): escape the rest, mark the data
            return escape(text).format(**values)
        return text.format(**values)

    def has(self, key: str) -> bool:
        return key in self._messages or key in self._fallback

    def label(self, name: str) -> str | None:
        """The label of a lake column (or model feature); None for a name that is none of them
        (a SQL alias), which the page shows as the name it is."""
        found = self._messages.get(f"column.{name}") or self._fallback.get(f"column.{name}")
        if found:
            return found
        from sciti.web.labels import english_label  # the data dictionary: loaded on first need

        return english_label(name)

    def column(self, name: str) -> str:
        """The label of a lake column, or the name itself when it is not one."""
        return self.label(name) or name

    def each(self, prefix: str, names: Any) -> list[str]:
        """The message ``<prefix>.<name>`` of each name (``t.each("lane", lanes)``)."""
        return [self(f"{prefix}.{n}") for n in names]

    def columns(self, names: Any) -> list[str]:
        """:meth:`column` of each name (``t.columns(names)`` in a template)."""
        return [self.column(str(n)) for n in names]


__all__ = ["DEFAULT", "LANGUAGES", "LANG_COOKIE", "Translator", "catalogue", "keep", "pick"]
