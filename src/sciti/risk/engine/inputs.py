"""Input models per assessed kind, derived from the record kinds' YAML (one source of field names).

Unknown field names are refused (a typo would otherwise be scored as a missing value), types are
checked, required fields are required, and a request holds exactly one of ``record`` and
``records``: a malformed request is answered 422 naming each field.
A declaration is its header fields plus ``items``, each a goods item, numbered from 1, each number
once. A consignment also takes its manifest's ``customs_office`` (the office where it is handled),
``mode_of_transport``, places and dates (what it is dated by), which batch scoring takes from the
manifest in the lake (``features.parent_fields``).

Values are read as ingest stores them, so a record scores the same in real time as from the lake
(decisions 0093 and 0096). Text is trimmed and spelt as stored, by ``sciti.model.rules`` itself:
country and currency codes upper-case (``" cn"`` is ``CN``), HS codes without dots, UN/LOCODEs and
identifiers compact, and an enumerated value in its listed spelling whatever its case (a value
outside the list is refused, naming the values the field takes); ``max_length`` counts the stored
spelling. Blank text is no value (ingest stores it as null). Code lists are not checked here: a
code outside its list is scored with the unknown-code indicator, as in batch. Numbers are JSON
numbers and yes/no fields JSON booleans (ingest has typed columns: ``true`` or ``"12.5"`` is a
client's mistake, not a mass or a price, and ``"yes"`` or ``1`` is not ``true``). Text that cannot
be stored as UTF-8 (a lone UTF-16 surrogate, which JSON's ``\\ud800`` escape can carry) is
refused. Each field's check is built once, with the cached model: a request looks nothing up.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import String

from sciti.model import FieldDef, RecordKind, get_kind, make_record_id
from sciti.model.rules import TRIM_CHARS, Invalid, enumeration_value, normalise_code
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine.subjects import REALTIME_SOURCE, SUBJECTS
from sciti.risk.features.catalog import parent_fields
from sciti.risk.features.spec import date_fields

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
# Smallest values the request takes beyond the record kinds' own: goods items are numbered from 1
# (the kind says so in words), and a number is what the answer's reasons name an item by.
_MINIMUM = {("declaration_item", "item_number"): 1}


def _storable(value: str) -> None:
    """A lone surrogate cannot be encoded, so the lake, the queue and the features would all fail
    on it (a 500): it is refused on its field, before any length limit."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "string_unicode",
            "text must be valid Unicode: character {position} is a lone UTF-16 surrogate "
            "(an unpaired \\ud800-\\udfff escape), which cannot be stored",
            {"position": exc.start + 1},
        ) from None


def _text(field: FieldDef | None = None, *, required: bool = False) -> Any:
    """The check of one text field, built once per field: its value as ingest stores it.

    Trimmed (``TRIM_CHARS``, as ``rules.coerce``), then spelt as stored (``rules.normalise_code``
    for coded fields and identifiers, ``rules.enumeration_value`` for enumerated ones). Blank text,
    or text that normalising leaves empty, is no value (ingest stores blank text as null), so a
    blank code reads "unknown" like a missing one and a rule sees NULL in both paths. Code lists
    are not checked here: a code outside its list is scored with the unknown-code indicator."""
    coded = field if field is not None and (field.codelist or field.identifier) else None
    listed = field if field is not None and field.values else None
    allowed = ", ".join(listed.values or ()) if listed is not None else ""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the type check says what is wrong
        _storable(value)
        text = value.strip(TRIM_CHARS)
        if text and coded is not None:
            text = normalise_code(coded, text)
        if text and listed is not None:
            try:
                text = enumeration_value(listed, text)
            except Invalid:
                # Ingest quarantines it; a clearance system is told which values the field takes
                # (not the value it sent: the API never echoes input).
                raise PydanticCustomError(
                    "enum", "Input should be one of: {expected} (in any case)", {"expected": allowed}
                ) from None
        if text:
            return text
        if required:
            raise PydanticCustomError("missing", "Field required: blank text is no value")
        return None

    return BeforeValidator(check)


def _number(name: str) -> Any:
    """A JSON number, nothing read as one: ``true`` is not 1 kg, nor ``"12.5"`` a price."""

    def check(value: Any) -> Any:
        if isinstance(value, (bool, str)):
            what = "true or false" if isinstance(value, bool) else "text"
            raise PydanticCustomError(
                f"{name}_type", "Input should be a JSON number, not {what}", {"what": what}
            )
        return value  # an int for a float field is fine; pydantic judges the rest

    return check


def _boolean(value: Any) -> Any:
    """A JSON boolean, nothing read as one: ``"yes"``, ``1`` or ``"on"`` is a client's guess at a
    boolean (pydantic's lax mode would take it), as ``true`` is not 1 kg."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        what = "text" if isinstance(value, str) else "a number"
        raise PydanticCustomError(
            "bool_type", "Input should be a JSON boolean (true or false), not {what}", {"what": what}
        )
    return value  # a list or an object: pydantic's own bool_type says so


_TEXT = _text()
_CHECKS: dict[str, Any] = {
    "int": BeforeValidator(_number("int")),
    "float": BeforeValidator(_number("float")),
    "bool": BeforeValidator(_boolean),
}
_CHECKS["decimal"] = _CHECKS["float"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Record(_Strict):
    """One record as sent. A ``record_id`` sent with it must be the one its key fields and source
    give: the id decides which stored record (and which open queue item) the answer is about, so a
    record sent under another record's id could take that record off the officers' queue."""

    kind: ClassVar[str] = ""

    @model_validator(mode="after")
    def _items_numbered_once(self) -> _Record:
        # Reasons and the answer's items name a goods item by its number: two items with one
        # number could not be told apart, and the record's id would be one for both.
        first: dict[int, int] = {}
        errors = []
        for i, item in enumerate(getattr(self, "items", None) or ()):
            number = item.item_number
            if number in first:
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "duplicate_item_number",
                            "item_number {number} is also the number of items[{other}]: "
                            "each goods item has its own number",
                            {"number": number, "other": first[number]},
                        ),
                        loc=("items", i, "item_number"),
                        input=number,
                    )
                )
            else:
                first[number] = i
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

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
            Annotated[str | None, _TEXT],
            Field(
                None, max_length=RECORD_ID_MAX, description="The record's lake id, when the sender knows it."
            ),
        ),
        "source": (
            Annotated[str | None, _TEXT],
            Field(None, description="Source system; used for the record id when none is sent."),
        ),
    }
    own = get_kind(kind)
    for f in (*own.fields, *(parent_fields(kind) if kind in SUBJECTS else ())):  # not goods items
        if f.name in skip:
            continue
        typ = _PY[f.type]
        max_length = f.max_length  # an office field's fits the queue (tests/risk/engine/test_widths.py)
        low, high = cast(tuple[float | None, float | None], INT64 if typ is int else (None, None))
        low = low if f.minimum is None else f.minimum  # e.g. no negative mass (the YAML says)
        low = _MINIMUM.get((kind, f.name), low)
        high = high if f.maximum is None else f.maximum
        finite = False if typ is float else None  # NaN and Infinity are not amounts (nor JSON)
        required = f.required and not optional
        check = _text(f, required=required) if typ is str else _CHECKS.get(f.type)
        annotated = typ if required else typ | None
        out[f.name] = (
            annotated if check is None else Annotated[annotated, check],
            Field(
                ... if required else None,
                description=f.description if f.name in own.field_names else _from_parent(own, f),
                max_length=max_length,
                ge=low,
                le=high,
                allow_inf_nan=finite,
            ),
        )
    return out


def _from_parent(kind: RecordKind, f: FieldDef) -> str:
    """What a field the request takes from the record's parent says (a consignment: the office)."""
    text = (
        f"{f.description.strip()} The {kind.parent}'s {f.name}, sent with the {kind.name}: batch "
        f"scoring takes it from the {kind.parent} in the lake."
    )
    if f.name in SUBJECTS[kind.name].office_fields:
        text += (
            f" It is where the {kind.name} is handled (the assessment's office); left out, the "
            "assessment has no office and only accounts without one see it."
        )
    dates = [name for name, _ in date_fields(kind.name)]
    if f.name in dates:
        text += (
            f" The first of {', '.join(dates)} sent dates the {kind.name} (its record_date, as in "
            "batch); with none sent, it has no date."
        )
    return text


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
