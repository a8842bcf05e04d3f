"""Input models per assessed kind, derived from the record kinds' YAML (one source of field names).

Unknown field names are refused (a typo would otherwise be scored as a missing value), types are
checked, required fields are required, and a request holds exactly one of ``record`` and
``records``: a malformed request is answered 422 naming each field.
A declaration is its header fields plus ``items``, each a goods item.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import String

from sciti.model import get_kind, make_record_id
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine.subjects import REALTIME_SOURCE, SUBJECTS

MAX_RECORDS = 1000
# Goods items: 999 in one declaration, as the WCO data model and EU customs declarations allow; and
# in one request, so a batch cannot hold the event loop (that answers every clearance system) for
# seconds: about 10,000 items take a second of scoring.
MAX_ITEMS = 999
MAX_REQUEST_ITEMS = 10_000


# The lake's record id, kept in the officers' queue: a longer one would make the database refuse
# the commit, so it is refused here, by name. Text fields carry their own ``max_length`` in the
# record kinds' YAML (ingest enforces it too); tests/risk/engine/test_widths.py checks they fit.
RECORD_ID_MAX = int(cast(String, RiskQueueItem.__table__.c["record_id"].type).length or 0)
INT64 = (-(2**63), 2**63 - 1)  # whole numbers as the lake keeps them
_PY: dict[str, Any] = {
    "string": str,
    "int": int,
    "float": float,
    "decimal": float,
    "bool": bool,
    "date": date,
    "timestamp": datetime,
}
# Fields an item takes from its declaration rather than repeating them.
_FROM_HEADER = frozenset({"declaration_id", "declaration_version"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Record(_Strict):
    """One record as sent. A ``record_id`` sent with it must be the one its key fields and source
    give: the id decides which stored record (and which open queue item) the answer is about, so a
    record sent under another record's id could take that record off the officers' queue."""

    kind: ClassVar[str] = ""

    @model_validator(mode="after")
    def _record_id_is_its_own(self) -> _Record:
        problems: list[tuple[tuple[str | int, ...], tuple[str, ...]]] = []
        source = getattr(self, "source", None) or REALTIME_SOURCE
        given = getattr(self, "record_id", None)
        key = get_kind(self.kind).key
        if given and given != make_record_id(self.kind, source, *(getattr(self, k, None) for k in key)):
            problems.append((("record_id",), key))
        header = (getattr(self, "declaration_id", None), getattr(self, "version", None))
        for i, item in enumerate(getattr(self, "items", None) or ()):
            own = item.record_id
            if own and own != make_record_id("declaration_item", source, *header, item.item_number):
                problems.append((("items", i, "record_id"), ("declaration_id", "version", "item_number")))
        if not problems:
            return self
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "record_id_mismatch",
                    "record_id is not the id of this record: it must be the one {key} and the source "
                    "give (leave it out and SCITI computes it)",
                    {"key": " + ".join(fields)},
                ),
                loc=loc,
                input=None,
            )
            for loc, fields in problems
        ]
        raise ValidationError.from_exception_data(type(self).__name__, errors)


class _Assess(_Strict):
    """A request: exactly one of ``record`` and ``records`` (the schema says so too, for clients)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["record"]}, {"required": ["records"]}]}
    )

    @model_validator(mode="after")
    def _one_of_record_or_records(self) -> _Assess:
        # Without this, neither would assess nothing (200, empty) and both would drop ``records``.
        one, many = getattr(self, "record", None), getattr(self, "records", None)
        if (one is None) != (many is None):
            return self
        if one is None:
            code, msg = "missing", "Field required: send record (one record) or records (a batch)"
        else:
            code, msg = "record_or_records", "send record or records, not both"
        errors = [
            InitErrorDetails(type=PydanticCustomError(code, msg), loc=(name,), input=None)
            for name in ("record", "records")
        ]
        # A ValidationError raised here keeps its field locations (a ValueError would name none).
        raise ValidationError.from_exception_data(type(self).__name__, errors)

    @model_validator(mode="after")
    def _items_in_reach(self) -> _Assess:
        records = getattr(self, "records", None) or []
        total = sum(len(getattr(r, "items", None) or ()) for r in records)
        if total <= MAX_REQUEST_ITEMS:
            return self
        msg = f"the batch holds {total:,} goods items; send at most {MAX_REQUEST_ITEMS:,} per request"
        error = InitErrorDetails(
            type=PydanticCustomError("too_many_items", msg), loc=("records",), input=None
        )
        raise ValidationError.from_exception_data(type(self).__name__, [error])


def _fields(kind: str, skip: frozenset[str] = frozenset(), optional: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "record_id": (
            str | None,
            Field(
                None, max_length=RECORD_ID_MAX, description="The record's lake id, when the sender knows it."
            ),
        ),
        "source": (
            str | None,
            Field(None, description="Source system; used for the record id when none is sent."),
        ),
    }
    for f in get_kind(kind).fields:
        if f.name in skip:
            continue
        typ = _PY[f.type]
        low, high = cast(tuple[float | None, float | None], INT64 if typ is int else (None, None))
        low = low if f.minimum is None else f.minimum  # e.g. no negative mass (the YAML says)
        high = high if f.maximum is None else f.maximum
        finite = False if typ is float else None  # NaN and Infinity are not amounts (nor JSON)
        required = f.required and not optional
        out[f.name] = (
            typ if required else typ | None,
            Field(
                ... if required else None,
                description=f.description,
                max_length=f.max_length,
                ge=low,
                le=high,
                allow_inf_nan=finite,
            ),
        )
    return out


@lru_cache(maxsize=8)
def record_model(kind: str) -> type[BaseModel]:
    """The pydantic model of one record of ``kind`` as a clearance system sends it."""
    name = "".join(p.capitalize() for p in kind.split("_"))
    base = type(f"_{name}Record", (_Record,), {"kind": kind})
    if kind != "declaration":
        return create_model(f"{name}In", __base__=base, **_fields(kind))
    item = create_model("DeclarationItemIn", __base__=_Strict, **_fields("declaration_item", _FROM_HEADER))
    return create_model(
        "DeclarationIn",
        __base__=base,
        **_fields("declaration"),
        items=(
            list[item],  # type: ignore[valid-type]
            Field(
                ...,
                min_length=1,
                max_length=MAX_ITEMS,
                description=f"The goods items (at least one, at most {MAX_ITEMS}).",
            ),
        ),
    )


def request_models() -> list[type[BaseModel]]:
    """One request model per kind: ``{"kind", "record": {...}}`` or ``{"kind", "records": [...]}``
    (exactly one of the two)."""
    out: list[type[BaseModel]] = []
    for kind in SUBJECTS:
        model = record_model(kind)
        name = "".join(p.capitalize() for p in kind.split("_"))
        fields: dict[str, Any] = {
            "kind": (Literal[kind], Field(description="Record kind.")),
            "record": (model | None, Field(None, description="One record (or send `records`).")),
            "records": (
                list[model] | None,  # type: ignore[valid-type]
                Field(
                    None,
                    min_length=1,
                    max_length=MAX_RECORDS,
                    description="A batch of records (or send `record`).",
                ),
            ),
        }
        out.append(create_model(f"Assess{name}", __base__=_Assess, **fields))
    return out


def records_of(body: Any) -> list[dict[str, Any]]:
    """The records of a request as plain dicts (fields not sent left out)."""
    items = (
        [body.record]
        if getattr(body, "record", None) is not None
        else list(getattr(body, "records", None) or [])
    )
    return [r.model_dump(exclude_none=True) for r in items]


__all__ = ["MAX_ITEMS", "MAX_RECORDS", "MAX_REQUEST_ITEMS", "record_model", "records_of", "request_models"]
