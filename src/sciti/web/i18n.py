"""Messages in English and Traditional Chinese: one YAML catalogue per language under ``i18n/``.

Keys are stable dotted names (``nav.home``); values may hold ``{name}`` placeholders. A key the
Chinese catalogue lacks falls back to English (a test keeps both catalogues the same size). The
language comes from the ``sciti_lang`` cookie, which logging in sets from the user's saved choice,
so the choice follows the person from one browser to the next.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

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
    return out


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


class Translator:
    """``t("nav.home")`` in templates; unknown keys show the key itself, so a gap is visible."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._messages = catalogue(self.lang)
        self._fallback = catalogue(DEFAULT)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._messages.get(key) or self._fallback.get(key) or key
        return text.format(**values) if values else text


__all__ = ["DEFAULT", "LANGUAGES", "LANG_COOKIE", "Translator", "catalogue", "pick"]
