"""What each reason the engine writes says, as a stable code and its values (decision 0107).

An assessment keeps its reasons twice, line by line: ``reasons`` (English sentences, the API's and
the audit's words, unchanged) and ``reason_codes`` (the same lines as ``{"code": ..., values}``),
so a page can say each line in its reader's language. ``reason_codes[i]`` is ``reasons[i]``;
:func:`english` makes the sentence from the code, and real time writes every sentence that way.

Codes and their values (``item``: the goods item a declaration's line names, "Item 3: "):

* ``rule_hit``: ``rule``, ``version``, ``weight``, ``lane`` (a lane rule's; else null) and
  ``text``, the rule's own reason as its analyst wrote it (their words, never translated);
* ``unknown_code``: ``field`` and ``value`` (the code, as text);
* ``model``: ``version``, ``score`` (whole, 0-100) and, with a calibrated model, ``share`` (of
  traffic scoring as high), ``unit`` and ``period`` (``period_start`` / ``period_end`` beside it);
* ``no_model``: ``kind``, ``why`` (the loader's own words, English; null: no champion) and
  ``cause``: ``rules_only`` (asked for), ``failed`` (a champion that cannot be loaded), or null;
  a failed one also has ``error`` (the loader's error code, ``model_load_error``) and
  ``champion`` (the version that failed; null: not known), which a page says instead of ``why``;
* ``factor``: a model factor's line: ``feature``, ``value``, ``contribution`` (as in ``factors``)
  and, for a smoothed rate, the counts it rests on (decision 0115): ``inspections``, ``frauds``
  (critical ones when ``critical``; null when not known), ``unit`` (``declaration`` or ``item``:
  what one inspection counts), ``overall`` (the rate it is pulled toward) and ``pulled`` (whether
  the words say so: few inspections); ``inspections`` 0 is a group never inspected; and (decision
  0118; absent from codes kept before) ``template``, which of the feature's templates made its
  sentence (``explain``,
  ``explain_no`` or ``explain_unseen``; null: none did, the sentence names only the feature and
  its value) and ``named``, the record's values that template names besides the factor's own
  (``{"importer_id": "IMP1"}``; None: the record lacks it, "unknown");
* ``sample``: ``share`` of records the random compliance sample selects;
* ``red_capacity``: ``office`` (null: none), ``day``, ``places`` (the day's red-lane capacity) and
  ``lane``, the lane given instead.

The text of a code is its JSON with the keys in this order (:func:`said_text`), so batch and real
time store the same bytes for the same line; batch builds its rule lines' codes column-wise.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sciti.risk.lanes import LANE_MEANING

RULE_HIT = "rule_hit"
UNKNOWN_CODE = "unknown_code"
MODEL = "model"
NO_MODEL = "no_model"
FACTOR = "factor"
SAMPLE = "sample"
RED_CAPACITY = "red_capacity"
CODES = (RULE_HIT, UNKNOWN_CODE, MODEL, NO_MODEL, FACTOR, SAMPLE, RED_CAPACITY)

# Why a run asked to score with rules only has no model (the answer's model line says it).
RULES_ONLY = "not used in this run (sciti risk score --rules-only)"
NO_ITEM: dict[str, Any] = {}  # a line that names no goods item


class LoadFailure(str):
    """Why a champion cannot be loaded: the loader's own words (the text, as ``why`` keeps them), with
    the error's code and the version that failed, which the ``no_model`` code carries so a page can
    say the line in its reader's language (decision 0118). A plain text works where this does."""

    error: str
    champion: str | None

    # error has a default: unpickling calls cls(text), then sets the attributes
    def __new__(cls, text: str, error: str = "model_load_error", champion: str | None = None) -> LoadFailure:
        made = super().__new__(cls, text)
        made.error, made.champion = error, champion
        return made


def item_of(number: Any) -> dict[str, Any]:
    """The ``item`` part of a declaration's line ("Item 3: ")."""
    return {"item": number}


def said_text(said: dict[str, Any]) -> str:
    """A code as stored in the lake: compact JSON, non-ASCII as itself, keys in their order."""
    return json.dumps(said, ensure_ascii=False, separators=(",", ":"))


def as_list(texts: list[str]) -> str:
    """Codes (each its :func:`said_text`) as one JSON array: how the officers' queue keeps them."""
    return "[" + ",".join(texts) + "]"


def from_list(text: str | None) -> list[dict[str, Any]] | None:
    """The codes a queue item keeps (None: none kept, or not a list of codes)."""
    try:
        found = json.loads(text) if text else None
    except ValueError:
        return None
    return found if isinstance(found, list) else None


def escaped(text: str) -> str:
    """``text`` as it reads inside a JSON string of :func:`said_text` (escaping is per character,
    so the escaped pieces of a text, joined, are the escaped text)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def rule_hit(
    rule: str, version: int, weight: float, lane: str | None, text: str, item: dict[str, Any]
) -> dict[str, Any]:
    return {"code": RULE_HIT, **item, "rule": rule, "version": version, "weight": weight, "lane": lane,
            "text": text}  # fmt: skip


def unknown_code(field: str, value: Any, item: dict[str, Any]) -> dict[str, Any]:
    return {"code": UNKNOWN_CODE, **item, "field": field, "value": str(value)}


def model(
    kind: str,
    version: str | None,
    whole: int,
    error: str | None,
    calibration: Any,
    item: dict[str, Any],
) -> dict[str, Any]:
    """The model line's code: the score, or why there is no model (``whole``: the score rounded)."""
    if version is None:
        cause = None if error is None else "rules_only" if error == RULES_ONLY else "failed"
        none = {"code": NO_MODEL, **item, "kind": kind, "why": error, "cause": cause}
        if isinstance(error, LoadFailure):
            none |= {"error": error.error, "champion": error.champion}
        return none
    said: dict[str, Any] = {"code": MODEL, **item, "version": version, "score": whole}
    if calibration is not None:
        k = min(100, max(0, whole))
        period = str(calibration.period)
        start, to, end = period.partition(" to ")  # how calibrate writes its period
        said |= {"share": float(calibration.share[k]), "unit": str(calibration.unit), "period": period}
        if to:
            said |= {"period_start": start, "period_end": end}
    return said


def factor(
    feature: str,
    value: Any,
    contribution: float,
    item: dict[str, Any],
    evidence: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    said = {"code": FACTOR, **item, "feature": feature, "value": value, "contribution": contribution}
    return said | (evidence or {}) | (template or {})


def sample(share: float) -> dict[str, Any]:
    return {"code": SAMPLE, "share": float(share)}


def red_capacity(office: str | None, day: date | str, places: int | None, lane: str) -> dict[str, Any]:
    return {"code": RED_CAPACITY, "office": office, "day": str(day), "places": places, "lane": lane}


def share_words(share: float) -> tuple[str, str]:
    """("top" | "most", the share as a percentage) as a calibrated model line says it: a share over
    a half reads "most records score as high or higher", not "top 96%" (calibrate.share_text)."""
    from sciti.risk.models.calibrate import _percent

    return ("most" if share > 0.5 else "top"), _percent(share)


def english(said: dict[str, Any], text: str | None = None) -> str:
    """The English sentence of a code, as ``reasons`` holds it. ``text`` (a factor's sentence) is
    what a factor's line says: the model's own words, which its code does not repeat."""
    code = said["code"]
    if code == RULE_HIT:
        effect = f"lane {said['lane']}" if said["lane"] else f"+{said['weight']:g}"
        line = f"{said['text']} (rule {said['rule']} v{said['version']}, {effect})"
    elif code == UNKNOWN_CODE:
        line = f"Unknown code in {said['field']} ({said['value']}): scored as unknown"
    elif code == MODEL:
        line = f"Model {said['version']} gives {said['score']} out of 100"
        if "share" in said:
            form, pct = share_words(said["share"])
            if form == "most":
                line += f": {pct} of {said['unit']} scored in {said['period']} score as high or higher"
            else:
                line += f": top {pct} of {said['unit']} scored in {said['period']}"
    elif code == NO_MODEL:
        why = f": {said['why']}" if said["why"] else ""
        line = f"No model for {said['kind']}{why}; scored with rules only"
    elif code == FACTOR:
        line = str(text)
    elif code == SAMPLE:
        line = f"Selected by the random compliance sample ({said['share']:.1%} of records)"
    elif code == RED_CAPACITY:
        lane = said["lane"]
        line = (
            f"Red-lane capacity of office {said['office'] or 'unknown'} for {said['day']} is used up "
            f"({said['places']} physical inspections): {lane} lane ({LANE_MEANING[lane]}) instead"
        )
    else:
        raise ValueError(f"no reason has the code {code!r}")
    return f"Item {said['item']}: {line}" if "item" in said else line


__all__ = [
    "CODES",
    "LoadFailure",
    "FACTOR",
    "MODEL",
    "NO_ITEM",
    "NO_MODEL",
    "RED_CAPACITY",
    "RULES_ONLY",
    "RULE_HIT",
    "SAMPLE",
    "UNKNOWN_CODE",
    "as_list",
    "english",
    "escaped",
    "factor",
    "from_list",
    "item_of",
    "model",
    "red_capacity",
    "rule_hit",
    "said_text",
    "sample",
    "share_words",
    "unknown_code",
]
