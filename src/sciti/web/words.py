"""Words the pages build from the risk engine's stable keys, in the reader's language.

The engine writes its reasons in English and stores them as text; only a model factor comes with
stable keys beside its words: the feature's name, its value and its contribution. The record page
says a factor from those in the reader's language (the feature's label from ``column.<name>``,
the value formatted as the feature's own explanation formats it), and keeps the engine's sentence
beside it for the details only the sentence has (the trader or the HS code it names; whether a
rate was assumed for a group never inspected). Reasons themselves have no keys: they stay as the
engine wrote them (docs/web.md, *Language*).
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

from sciti.errors import SCITIError
from sciti.risk.features.catalog import columns
from sciti.web.i18n import Translator, keep

_VALUE = re.compile(r"\{value(?::([^}]*))?\}")


@cache
def _value_format(kind: str, feature: str) -> str | None:
    """How the feature's explanation formats its value (``.0%`` for a rate), None if it does not."""
    try:
        info = columns(kind).get(feature)
    except SCITIError:  # a kind without a risk scope
        return None
    found = _VALUE.search(info.explain or "") if info else None
    return found.group(1) if found else None


def factor_value(t: Translator, kind: str, feature: str, value: Any) -> Any:
    """A factor's value as the page shows it: yes/no, a formatted number, or a stored value as data."""
    if value is None:
        return t("risk.factor_missing")
    if isinstance(value, bool):
        return t("value.yes") if value else t("value.no")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return t("risk.factor_not_computable")
        spec = _value_format(kind, feature)
        try:
            return format(value, spec) if spec else f"{value:,.6g}"
        except (TypeError, ValueError):
            return f"{value:,.6g}"
    return keep(value)


def factor_words(t: Translator, kind: str, factor: dict[str, Any]) -> str:
    """One model factor in the reader's language: label, value and contribution."""
    feature = str(factor.get("feature"))
    contribution = factor.get("contribution")
    return t(
        "risk.factor_line",
        label=t.column(feature),
        value=factor_value(t, kind, feature, factor.get("value")),
        contribution=f"{contribution:+.2f}" if isinstance(contribution, (int, float)) else "?",
    )


__all__ = ["factor_value", "factor_words"]
