"""Words the pages build from the risk engine's stable keys, in the reader's language.

The engine keeps each reason twice, line for line: its English sentence (``reasons``) and its
code with values (``reason_codes``, risk/engine/reasons.py). A page says a line from its code in
the reader's language (``reason.*``); what a person wrote or the record holds (a rule's own reason,
a rule id, a model version, a code's value) is shown as written and marked as data. A line
without a code (an assessment stored before codes were kept, or a code this page does not know)
is shown as the engine wrote it, marked ``data-untranslated="engine"``. An English page shows
the engine's sentences as stored, the words of the record and the audit.

A model factor is said from its keys: the feature's label from ``column.<name>``, the value
formatted as the feature's own explanation formats it and, for a smoothed rate, the counts it
rests on (``inspections``, ``frauds``; decision 0115). A factor that keeps the template its
sentence was made from and the record's values it names (``template``, ``named``; decision 0118)
is said whole, from the catalogues' words for that template; one kept without them (scored
before) keeps the engine's sentence beside it for what only the sentence names (the trader or the
HS code). See docs/web.md, *Language*.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from markupsafe import Markup, escape

from sciti.errors import SCITIError
from sciti.risk.engine.reasons import share_words
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
    """One model factor in the reader's language: label, value, the counts behind a rate, and
    contribution (``factor``: an entry of ``factors`` or a factor's code: the same keys)."""
    feature = str(factor.get("feature"))
    contribution = factor.get("contribution")
    named = {
        "label": t.column(feature),
        "value": factor_value(t, kind, feature, factor.get("value")),
        "contribution": f"{contribution:+.2f}" if isinstance(contribution, (int, float)) else "?",
    }
    if isinstance(factor.get("inspections"), int):
        return t("risk.factor_line_evidence", evidence=evidence_words(t, kind, factor), **named)
    return t("risk.factor_line", **named)


def factor_sentence(t: Translator, kind: str, factor: dict[str, Any]) -> str | None:
    """A model factor's whole sentence in the reader's language, made as the engine makes its
    English: the feature's template (``<template>.<kind>.<feature>``, the catalogues' words for
    features.yaml's) filled from the values the factor keeps (``template``, ``named``: decision
    0118), then its contribution. None for a factor kept without them (scored before) or one the
    catalogues do not say: the page shows its label and value, with the engine's sentence beside.
    A factor no template says (``template`` null) is its label and value: that is its whole sentence."""
    form, named = factor.get("template"), factor.get("named")
    feature = str(factor.get("feature"))
    if "template" in factor and form is None:
        return factor_words(t, kind, factor)
    key = f"{form}.{kind}.{feature}"
    if not isinstance(form, str) or not isinstance(named, dict) or not t.has(key):
        return None
    value = factor.get("value")
    values = {k: t("risk.value_unknown") if v is None else keep(v) if isinstance(v, str) else v
              for k, v in named.items()}  # fmt: skip
    values["value"] = keep(value) if isinstance(value, str) else value
    if "{evidence" in t(key):
        values["evidence"] = _evidence_or_how(t, kind, factor)
    contribution = factor.get("contribution")
    try:
        sentence = t(key, **values)
        return t("risk.factor_sentence", sentence=keep_said(sentence), contribution=f"{contribution:+.2f}")
    except (KeyError, TypeError, ValueError, IndexError):  # values that do not fit the words
        return None


def keep_said(words: str) -> Markup:
    """Words already said (their data marked) placed inside another message as they are."""
    return words if isinstance(words, Markup) else escape(words)


def _evidence_or_how(t: Translator, kind: str, factor: dict[str, Any]) -> str:
    """A rate's counts; without them (a rate of training or evaluation), how such a rate is made."""
    if isinstance(factor.get("inspections"), int):
        return evidence_words(t, kind, factor)
    from sciti.risk.features.evidence import rate_sources

    src = rate_sources(kind).get(str(factor.get("feature")))
    return t("risk.evidence_how_critical" if src and src.stat == "critical_rate" else "risk.evidence_how")


def evidence_words(t: Translator, kind: str, factor: dict[str, Any]) -> str:
    """The counts behind a smoothed rate, as the engine's sentence says them (features/evidence.py)."""
    spec = _value_format(kind, str(factor.get("feature"))) or ".0%"
    overall = format(float(factor["overall"]), spec)
    inspections = int(factor["inspections"])
    if inspections == 0:
        return t("risk.evidence_unseen", overall=overall)
    items = "_items" if factor.get("unit") == "item" else ""
    frauds = factor.get("frauds")
    if frauds is None:
        words = t(f"risk.evidence_inspections{items}", inspections=f"{inspections:,}")
    else:
        counted = "critical" if factor.get("critical") else "frauds"
        counts = {"inspections": f"{inspections:,}", "frauds": f"{int(frauds):,}"}
        words = t(f"risk.evidence_{counted}{items}", **counts)
    return t("risk.evidence_pulled", evidence=words, overall=overall) if factor.get("pulled") else words


# What a line shows as written: data, and a loader's own English words.
_KEPT = re.compile(r'<span (?:translate="no"|lang="en" data-untranslated="engine")>(.*?)</span>', re.S)
_ENGINE = Markup('<span data-untranslated="engine">{}</span>')
_BESIDE = Markup('<br><small class="muted" lang="en" data-untranslated="engine">{}</small>')
_LOADER = Markup('<span lang="en" data-untranslated="engine">{}</span>')  # a loader's own English words


@dataclass(frozen=True)
class ReasonShown:
    """One reason line as a page shows it."""

    html: Markup  # the line (its data marked; the engine's words marked when untranslated)
    plain: str  # the same as text, for a title
    kept: str  # the words the line shows as written (data-keep of an element whose title holds it)
    translated: bool  # False: the engine's English sentence, the line has no code this page knows
    code: str | None


def paired(reasons: list[str] | None, codes: list[Any] | None) -> list[tuple[str, dict[str, Any] | None]]:
    """Each reason with its code (stored as JSON text in the lake, as an object in the queue);
    None for every line when the codes are missing or do not go line for line."""
    lines = list(reasons or [])
    found: list[dict[str, Any] | None] = []
    for c in codes or []:
        try:
            said = json.loads(c) if isinstance(c, str) else c
        except ValueError:
            said = None
        found.append(said if isinstance(said, dict) and isinstance(said.get("code"), str) else None)
    if len(found) != len(lines):
        found = [None] * len(lines)
    return list(zip(lines, found, strict=True))


def reason_words(
    t: Translator, kind: str, reasons: list[str] | None, codes: list[Any] | None
) -> list[ReasonShown]:
    """The reasons as the page shows them: said from their codes in the reader's language, else
    (no code, or one this page does not know) the engine's English, marked."""
    out = []
    for text, said in paired(reasons, codes):
        line = None
        if said is not None and t.lang == "en":
            line = ReasonShown(escape(text), text, "", True, said["code"])
        elif said is not None:
            line = _line(t, kind, said, text)
        if line is None:
            line = ReasonShown(_ENGINE.format(text), text, text, False, None)
        out.append(line)
    return out


def _line(t: Translator, kind: str, said: dict[str, Any], text: str) -> ReasonShown | None:
    """One coded line in the reader's language; None for a code (or values) it does not know."""
    say = _SAY.get(said["code"])
    try:
        if say is None:
            return None
        words = escape(say(t, kind, said))  # Markup as it is; plain words escaped
        if "item" in said:
            words = escape(t("reason.item", item=keep(said["item"]), reason=words))
    except (KeyError, TypeError, ValueError):  # a code of another version's engine: its English
        return None
    plain = words.striptags()
    kept = " ".join(html.unescape(k) for k in _KEPT.findall(str(words)))
    if said["code"] == "factor" and factor_sentence(t, kind, said) is None:
        # the engine's sentence beside it: only it names the trader or HS code (a factor kept
        # without its template's values, decision 0118)
        english = text.split(": ", 1)[1] if "item" in said and ": " in text else text
        words += _BESIDE.format(english)
        kept = f"{kept} {english}".strip()
    return ReasonShown(words, plain, kept, True, said["code"])


def _rule_hit(t: Translator, kind: str, said: dict[str, Any]) -> str:
    # The rule's reason is its analyst's own words: shown as written.
    named = {"text": keep(said["text"]), "rule": keep(said["rule"]), "version": int(said["version"])}
    if said.get("lane"):
        return t("reason.rule_lane", lane=t(f"lane.{said['lane']}"), **named)
    return t("reason.rule_weight", weight=f"{float(said['weight']):g}", **named)


def _unknown_code(t: Translator, kind: str, said: dict[str, Any]) -> str:
    return t("reason.unknown_code", field=t.column(str(said["field"])), value=keep(said["value"]))


def _model(t: Translator, kind: str, said: dict[str, Any]) -> str:
    named = {"version": keep(said["version"]), "score": int(said["score"])}
    if "share" not in said:
        return t("reason.model", **named)
    form, share = share_words(float(said["share"]))
    if said.get("period_start") and said.get("period_end"):
        period = t("reason.period", start=keep(said["period_start"]), end=keep(said["period_end"]))
    else:
        period = keep(said["period"])
    unit = t(f"kind.{kind}")  # the calibration counts records of the assessment's own kind
    if form == "most":
        return t("reason.model_most", share=share, unit=unit, period=period, **named)
    return t("reason.model_top", share=share, unit=unit, period=period, **named)


def _no_model(t: Translator, kind: str, said: dict[str, Any]) -> str:
    of = t(f"kind.{said['kind']}")
    if said.get("cause") == "rules_only":
        return t("reason.no_model_rules_only", kind=of, command=keep("sciti risk score --rules-only"))
    if said.get("cause") == "failed" and isinstance(said.get("error"), str):
        # said from the loader's error code (decision 0118); its own English words stay in the
        # stored sentence, the API and the log
        code = f"code.{said['error']}" if t.has(f"code.{said['error']}") else "code.model_load_error"
        error = t(code).rstrip("。.")
        if said.get("champion"):
            return t("reason.no_model_failed", kind=of, champion=keep(said["champion"]), error=error)
        return t("reason.no_model_failed_unnamed", kind=of, error=error)
    if said.get("why"):
        return t("reason.no_model_why", kind=of, why=_LOADER.format(said["why"]))
    return t("reason.no_model", kind=of)


def _factor(t: Translator, kind: str, said: dict[str, Any]) -> str:
    return factor_sentence(t, kind, said) or factor_words(t, kind, said)


def _sample(t: Translator, kind: str, said: dict[str, Any]) -> str:
    return t("reason.sample", share=f"{float(said['share']):.1%}")


def _red_capacity(t: Translator, kind: str, said: dict[str, Any]) -> str:
    lane = str(said["lane"])
    meanings = {
        "red": t("reason.lane_meaning_red"),
        "yellow": t("reason.lane_meaning_yellow"),
        "blue": t("reason.lane_meaning_blue"),
        "green": t("reason.lane_meaning_green"),
    }
    return t(
        "reason.red_capacity",
        office=keep(said["office"]) if said.get("office") else t("reason.office_unknown"),
        day=keep(said["day"]),
        places=said["places"],
        lane=t(f"lane.{lane}"),
        meaning=meanings[lane],
    )


_SAY: dict[str, Callable[[Translator, str, dict[str, Any]], str]] = {
    "rule_hit": _rule_hit,
    "unknown_code": _unknown_code,
    "model": _model,
    "no_model": _no_model,
    "factor": _factor,
    "sample": _sample,
    "red_capacity": _red_capacity,
}


__all__ = [
    "ReasonShown",
    "evidence_words",
    "factor_sentence",
    "factor_value",
    "factor_words",
    "paired",
    "reason_words",
]
