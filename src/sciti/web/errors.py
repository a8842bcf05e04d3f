"""Errors of the web application, and errors in the reader's language.

An error the web layer raises itself is worded by catalogue keys (:class:`PageNotFound`,
:class:`PageInvalid`, :class:`PageForbidden`): its page says it in the reader's language, and
its ``message`` (for the log) is the English. An error of another layer (the SQL path, the risk
engine ...) carries English words and a stable ``code``: a page in another language says what
``code.<code>`` says and shows the server's English words beside it (:func:`say`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sciti.access.errors import AuthenticationRequired, PermissionDenied
from sciti.errors import InvalidInput, NotFound, SCITIError
from sciti.web.i18n import DEFAULT, Translator, keep


class LoginNeeded(AuthenticationRequired):
    """A page was asked for without a live browser session: the browser is sent to the login page."""

    default_message = "this page needs you to log in"
    default_remedy = "log in with your username, password and one-time code"


class AssetsMissing(SCITIError):
    """The front-end libraries were not installed next to SCITI."""

    code = "web_assets_missing"
    http_status = 500
    default_remedy = "run `npm ci` in the project folder, then `python -m sciti.web.assets`"


@dataclass(frozen=True)
class Names:
    """Codes shown by their labels (``<prefix>.<name>``) in the reader's language, comma-joined."""

    prefix: str
    names: tuple[str, ...]

    def words(self, t: Translator) -> str:
        return ", ".join(t(f"{self.prefix}.{n}") for n in self.names) or t("shell.none")


class _Worded(SCITIError):
    """An error worded by the catalogues: ``key`` (and ``remedy_key``) with ``values``."""

    def __init__(
        self, key: str, remedy_key: str | None = None, *, details: dict | None = None, **values: Any
    ):
        self.key, self.remedy_key, self.values = key, remedy_key, values
        message, remedy = self.words(Translator(DEFAULT), marked=False)
        super().__init__(message, remedy=remedy, details=details)

    def words(self, t: Translator, *, marked: bool = True) -> tuple[str, str | None]:
        """Message and remedy in ``t``'s language; ``marked``: the values marked as data (a page),
        else plain (the English message, for the log)."""
        shown = {
            k: v.words(t) if isinstance(v, Names) else keep(v) if marked else v
            for k, v in self.values.items()
        }
        return t(self.key, **shown), t(self.remedy_key) if self.remedy_key else None


class PageNotFound(_Worded, NotFound):
    """Nothing at this address for this reader (an unknown id, or another office's record)."""


class PageInvalid(_Worded, InvalidInput):
    """A form the page cannot take."""


class PageForbidden(_Worded, PermissionDenied):
    """The reader's roles do not allow this page."""


def say(t: Translator, exc: SCITIError) -> tuple[str, str | None, str | None]:
    """``exc`` for a reader of ``t``'s language: (message, remedy, the server's own English words
    when the message had to be said in other words, else None)."""
    if isinstance(exc, _Worded):
        message, remedy = exc.words(t)
        return message, remedy, None
    if t.lang == DEFAULT:
        return exc.message, exc.remedy, None
    key = f"code.{exc.code}"
    return t(key) if t.has(key) else t("error.unexplained"), None, str(exc)


__all__ = [
    "AssetsMissing",
    "LoginNeeded",
    "Names",
    "PageForbidden",
    "PageInvalid",
    "PageNotFound",
    "say",
]
