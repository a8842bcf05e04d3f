"""The model's validation as DuckDB SQL text, generated from a kind's FieldDefs (the fast path).

For each field the generator gives two expressions over the field's cleaned text: ``value`` (the
typed, normalised value the model stores) and ``ok`` (true when that value is certain). A value is
certain only in a strict form whose SQL result is provably the one ``rules.check_value`` gives:
``-12`` but not ``+12`` or ``1e3``, ``2024-05-01`` but not ``20240501``, an ASCII country code found
in the code list. A row with any field not ``ok`` is handed to ``validate_table``, which decides
it and words the reason; so the edge cases and the sentences people read stay the model's alone,
and a valid row gets the same stored values whichever path decided it (tests/model/test_sql.py).

Code lists are read from tables named ``code_table(name)`` with one column ``code``
(``code_tables`` gives them as Arrow tables to register in the DuckDB connection once).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from sciti.model.codelists import CODELIST_NAMES, CodeLists
from sciti.model.rules import FALSE_WORDS, TRIM_CHARS, TRUE_WORDS
from sciti.model.schema import FieldDef

__all__ = [
    "FieldSQL",
    "bare_text_sql",
    "clean_text_sql",
    "code_table",
    "code_tables",
    "field_sql",
    "key_text_sql",
    "needs_trim",
    "record_id_sql",
    "sql_str",
    "text_sql",
]

SQL_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "decimal": "DECIMAL(18,4)",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}
# Strict forms (RE2, whole value) whose DuckDB cast equals rules.py's coercion exactly.
_INT = r"-?[0-9]{1,18}"
_FLOAT = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"
_DECIMAL = r"-?[0-9]{1,14}(\.[0-9]{1,18})?"
_TIE = r"-?[0-9]+\.[0-9]{4}50*"  # exactly half a unit of the 4th place: rounds to the even digit
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
)
_FIRST_TS = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
_LAST_TS = "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


def sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _in_list(expr: str, words: tuple[str, ...] | list[str]) -> str:
    return f"{expr} IN ({', '.join(sql_str(w) for w in words)})"


def code_table(name: str) -> str:
    """Name of the DuckDB table holding code list ``name`` (column ``code``)."""
    return f"sciti_codes_{name}"


def code_tables(codelists: CodeLists) -> dict[str, pa.Table]:
    """Every code list as a one-column Arrow table, keyed by ``code_table`` name."""
    return {code_table(n): pa.table({"code": codelists.value_set(n)}) for n in CODELIST_NAMES}


def clean_text_sql(raw: str) -> str:
    """The raw value as trimmed text, NULL when blank (``rules.is_empty``), same characters trimmed.

    DuckDB's ``trim(text, characters)`` is slow, so it only runs on values that start or end with
    one of the characters (rare in practice).
    """
    text, chars = f"CAST(({raw}) AS VARCHAR)", sql_str(TRIM_CHARS)
    edge = f"strpos({chars}, left({text}, 1)) > 0 OR strpos({chars}, right({text}, 1)) > 0"
    return f"NULLIF(CASE WHEN {edge} THEN trim({text}, {chars}) ELSE {text} END, '')"


def bare_text_sql(raw: str) -> str:
    """The raw value as text, NULL when empty, untrimmed: for fields whose strict forms contain no
    blank character, so a value with one is never certain and goes to the model anyway."""
    return f"NULLIF(CAST(({raw}) AS VARCHAR), '')"


def needs_trim(fd: FieldDef) -> bool:
    """Whether the fast path must see ``fd``'s value trimmed (only free text: every other form
    is a strict pattern, a code list or an enumeration, none of which holds a blank at its ends)."""
    return fd.type == "string" and not (fd.codelist or fd.identifier or fd.values)


def text_sql(fd: FieldDef, raw: str) -> str:
    """The text column ``field_sql`` expects for ``fd``: trimmed only where that matters."""
    return clean_text_sql(raw) if needs_trim(fd) else bare_text_sql(raw)


@dataclass(frozen=True)
class FieldSQL:
    """``value``: the stored value when ``ok``; ``ok``: the fast path is certain of it (never NULL)."""

    value: str
    ok: str


def _match(text: str, pattern: str) -> str:
    return f"regexp_full_match({text}, {sql_str(pattern)})"


def _in_codes(expr: str, name: str) -> str:
    return f"{expr} IN (SELECT code FROM {code_table(name)})"


def _string(fd: FieldDef, t: str) -> tuple[str, str]:
    """(value, condition on a present value) for a text field."""
    if fd.identifier:
        return t, "false"  # check digits and their normalisation: the model decides every value
    if fd.codelist in ("country", "currency"):
        value = f"upper({t})"
        cond = f"{_match(t, '[A-Za-z]+')} AND {_in_codes(value, fd.codelist)}"
    elif fd.codelist == "hs":
        value = f"replace(replace({t}, '.', ''), ' ', '')"
        cond = f"{_match(value, '[0-9]{6,}')} AND {_in_codes(f'left({value}, 6)', 'hs')}"
    elif fd.codelist == "unlocode":
        compact = f"replace({t}, ' ', '')"
        value = f"upper({compact})"
        cond = (
            f"{_match(compact, '[A-Za-z]{2}[A-Za-z2-9]{3}')} AND {_in_codes(f'left({value}, 2)', 'unlocode')}"
        )
    elif fd.codelist:
        return t, "false"
    else:
        value, cond = t, "true"
    if fd.values:
        cond = f"{cond} AND {_in_list(value, fd.values)}"  # other spellings: the model folds case
    if fd.max_length is not None:
        cond = f"{cond} AND strlen({value}) <= {fd.max_length}"  # bytes >= characters: safe side
    return value, cond


def _decimal(t: str) -> str:
    """Text in the ``_DECIMAL`` form as decimal(18, 4), rounded half-to-even like ``rules``.

    DuckDB rounds halves away from zero, which differs from half-to-even only on exact ties;
    a tie is spotted in the text and settled on the 4th fraction digit's parity.
    """
    four = f"TRY_CAST(regexp_extract({t}, '-?[0-9]+\\.[0-9]{{4}}') AS DECIMAL(18,4))"
    unit = f"(CASE WHEN starts_with({t}, '-') THEN -0.0001 ELSE 0.0001 END)"
    odd = f"(TRY_CAST(right(regexp_extract({t}, '-?[0-9]+\\.[0-9]{{4}}'), 1) AS INTEGER) % 2 = 1)"
    tie = f"CASE WHEN {odd} THEN {four} + {unit} ELSE {four} END"
    return (
        f"(CASE WHEN NOT contains({t}, '.') OR length(split_part({t}, '.', 2)) <= 4 "
        f"THEN TRY_CAST({t} AS DECIMAL(18,4)) WHEN {_match(t, _TIE)} THEN TRY_CAST({tie} AS DECIMAL(18,4)) "
        f"ELSE TRY_CAST(round(TRY_CAST({t} AS DECIMAL(38,18)), 4) AS DECIMAL(18,4)) END)"
    )


def field_sql(fd: FieldDef, t: str) -> FieldSQL:
    """Fast-path value and certainty for field ``fd``; ``t`` is its ``text_sql`` column."""
    empty_ok = "false" if fd.required else "true"
    if fd.type == "string":
        value, cond = _string(fd, t)
    elif fd.type == "decimal":
        value, cond = _decimal(t), f"{_match(t, _DECIMAL)} AND abs({_decimal(t)}) < 100000000000000"
    elif fd.type in ("int", "float"):
        pattern = {"int": _INT, "float": _FLOAT}[fd.type]
        value, cond = f"TRY_CAST({t} AS {SQL_TYPES[fd.type]})", _match(t, pattern)
    elif fd.type == "bool":
        lower = f"lower({t})"
        yes, no = _in_list(lower, TRUE_WORDS), _in_list(lower, FALSE_WORDS)
        value = f"(CASE WHEN {yes} THEN true WHEN {no} THEN false END)"
        cond = f"{value} IS NOT NULL"
    elif fd.type == "date":
        value = f"TRY_CAST({t} AS DATE)"
        cond = f"{_match(t, _DATE)} AND {value} >= DATE '0001-01-01'"
    else:  # timestamp; the connection's TimeZone is UTC, so a value without a zone is UTC
        value = f"TRY_CAST({t} AS TIMESTAMPTZ)"
        cond = f"{_match(t, _TIMESTAMP)} AND {value} BETWEEN {_FIRST_TS} AND {_LAST_TS}"
    if fd.minimum is not None:  # out of range: not certain, so the model decides and words it
        cond = f"{cond} AND {value} >= {fd.minimum!r}"
    if fd.maximum is not None:
        cond = f"{cond} AND {value} <= {fd.maximum!r}"
    return FieldSQL(
        value=value, ok=f"(CASE WHEN {t} IS NULL THEN {empty_ok} ELSE coalesce({cond}, false) END)"
    )


def key_text_sql(fd: FieldDef, value: str) -> str:
    """A typed key value as the text ``make_record_id`` hashes (Python's ``str``; NULL -> '')."""
    if fd.type == "bool":
        text = f"CASE WHEN {value} THEN 'True' ELSE 'False' END"
    elif fd.type == "timestamp":
        text = f"strftime({value}, '%Y-%m-%d %H:%M:%S') || CASE WHEN microsecond({value}) % 1000000 = 0 THEN '' ELSE strftime({value}, '.%f') END || '+00:00'"  # noqa: E501
    else:
        text = f"CAST({value} AS VARCHAR)"
    return f"coalesce({text}, '')"


def record_id_sql(kind_name: str, source: str, key_texts: list[str]) -> str:
    """Same formula as ``make_record_id``: md5 of kind, source, key parts joined by chr(31)."""
    parts = [sql_str(kind_name), sql_str(source), *key_texts]
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"
