"""Input models per assessed kind, derived from the record kinds' YAML (one source of field names).

Unknown field names are refused (a typo would otherwise be scored as a missing value), types are
checked, required fields are required, and a request holds exactly one of ``record`` and
``records``: a malformed request is answered 422 naming each field.
A declaration is its header fields plus ``items``, each a goods item.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import String

from sciti.model import get_kind
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine.subjects import SUBJECTS

MAX_RECORDS = 1000


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
    if kind != "declaration":
        return create_model(f"{name}In", __base__=_Strict, **_fields(kind))
    item = create_model("DeclarationItemIn", __base__=_Strict, **_fields("declaration_item", _FROM_HEADER))
    return create_model(
        "DeclarationIn",
        __base__=_Strict,
        **_fields("declaration"),
        items=(list[item], Field(..., min_length=1, description="The goods items (at least one).")),  # type: ignore[valid-type]
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


__all__ = ["MAX_RECORDS", "record_model", "records_of", "request_models"]
