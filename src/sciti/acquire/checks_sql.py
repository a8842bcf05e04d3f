"""The SQL of the mapping pass, generated from a connector's outputs and the model's FieldDefs.

``compile_checks`` gives one statement over the staged rows: the connector's expressions, their
text (trimmed where the model trims), and per field the model's fast-path value and certainty
(``sciti.model.sql``); ``output_select`` gives what one output stores, provenance and record id
included. ``sciti.acquire.mapping`` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sciti.acquire.connector import Connector, Output
from sciti.acquire.errors import ConnectorError
from sciti.acquire.formats.tabular import Staged, quote_ident, sql_str
from sciti.model import PARENT_COLUMN, PROVENANCE_NAMES, RecordKind, get_kind
from sciti.model.rules import TRIM_CHARS
from sciti.model.sql import (
    bare_text_sql,
    clean_text_sql,
    field_sql,
    key_text_sql,
    needs_trim,
    record_id_sql,
)


def kinds(connector: Connector) -> list[tuple[int, Output, RecordKind]]:
    found = []
    for i, out in enumerate(connector.outputs):
        kind = get_kind(out.kind)
        for n in out.fields:
            kind.field(n)  # an unknown field name is the connector's mistake: say so now
        missing = [k for k in kind.key if k not in out.fields]
        if missing:
            raise ConnectorError(
                f"output {kind.name} does not map key field {missing[0]!r}",
                remedy=f"map every key field: {', '.join(kind.key)}",
            )
        found.append((i, out, kind))
    return found


# Internal column names start with "__": normalised source names never do (normalise_name strips
# leading underscores), so the mapping pass can carry the source columns alongside its own.
def value_columns(
    connector: Connector,
) -> tuple[dict[str, str], dict[tuple[str, bool], str], dict[tuple[int, str], str]]:
    """(expression -> its column ``__r<k>``, (expression, trimmed) -> its text column ``__t<k>`` or
    ``__u<k>``, (output, field) -> its value column in ``m``).

    Outputs often map the same expression to fields of the same type (a declaration id goes to
    three kinds): such fields share one column, so each distinct value is computed once.
    """
    sources: dict[str, str] = {}
    texts: dict[tuple[str, bool], str] = {}
    canon: dict[tuple[str, str], str] = {}
    alias: dict[tuple[int, str], str] = {}
    for i, out, kind in kinds(connector):
        for n, expr in out.fields.items():
            r = sources.setdefault(expr, f"__r{len(sources)}")
            trim = needs_trim(kind.field(n))
            t = texts.setdefault((expr, trim), f"__{'t' if trim else 'u'}{r[3:]}")
            value = field_sql(kind.field(n), quote_ident(t)).value
            alias[(i, n)] = canon.setdefault((expr, value), f"__v{i}_{n}")
    return sources, texts, alias


def kept_column(r: str) -> str:
    """Column of ``m`` keeping expression column ``r``'s value for the rows the model decides."""
    return "__s" + r[3:]


def _text_sql(raw: str, trim: bool) -> str:
    """The model's text column (``clean_text_sql`` / ``bare_text_sql``), with a cheap guard: a value
    whose first and last characters are printable ASCII cannot start or end with a trim character
    (TRIM_CHARS holds none), so the model's costlier trim only runs on the others."""
    if not trim:
        return bare_text_sql(raw)
    text = f"CAST(({raw}) AS VARCHAR)"
    last = f"right({text}, 1)"
    plain = f"{text} >= '!' AND {text} < '\x7f' AND {last} >= '!' AND {last} < '\x7f'"
    return f"(CASE WHEN {plain} THEN {text} ELSE {clean_text_sql(raw)} END)"


assert not any("!" <= ch <= "~" for ch in TRIM_CHARS)  # what _text_sql's guard relies on


def _column_of(expr: str) -> str | None:
    """The source column an expression merely names (``office_id`` or ``"office_id"``), if any."""
    found = re.fullmatch(r'\s*"?([^"\s()]+)"?\s*', expr)
    return found.group(1) if found else None


def _simpler_ok(ok: str, t: str) -> str | None:
    """The model's certainty for a free-text field is "any value" or "any non-empty value": say so
    without a CASE per row (None: always certain)."""
    if ok == f"(CASE WHEN {t} IS NULL THEN true ELSE coalesce(true, false) END)":
        return None
    if ok == f"(CASE WHEN {t} IS NULL THEN false ELSE coalesce(true, false) END)":
        return f"({t} IS NOT NULL)"
    return ok


def compile_checks(
    connector: Connector,
    table: str = "m",
    *,
    source: str = "(SELECT rowid AS __row, * FROM src)",
    raw: str | None = None,
    suspect: str | None = None,
    select_only: bool = False,
    plain: frozenset[str] = frozenset(),
) -> str:
    """CREATE TABLE ``table`` in one pass over ``source`` (the unit's rows as text, with ``__row``)
    (``select_only``: the pass as a query giving every source column, value and ``__ok``):
    per row ``__row``, ``__in<i>`` (output i applies), the typed values (columns named by
    ``value_columns``), ``__ok`` (every applying output is certain of every field, and ``suspect``
    is not true) and, for the rows that are not ``__ok`` only, each expression's value (``__s<k>``,
    for the model) and ``raw`` (the row as source text, for quarantine) as ``__raw``."""
    sources, texts, alias = value_columns(connector)
    raw_cols, text, typed, oks, names = ["*"], ["*"], [], [], ["__row"]
    for expr, r in sources.items():
        raw_cols.append(f"({expr}) AS {quote_ident(r)}")
    for (expr, trim), t in texts.items():
        if _column_of(expr) in plain:  # the column holds nothing to trim and no empty text
            text.append(f"{quote_ident(sources[expr])} AS {quote_ident(t)}")
        else:
            text.append(f"{_text_sql(quote_ident(sources[expr]), trim)} AS {quote_ident(t)}")
    done: set[str] = set()
    for i, out, kind in kinds(connector):
        into = f"__in{i}"
        raw_cols.append(f"coalesce(({out.where}), false) AS {into}" if out.where else f"true AS {into}")
        names.append(into)
        field_oks: list[str] = []
        for n, expr in out.fields.items():
            fs = field_sql(kind.field(n), quote_ident(texts[(expr, needs_trim(kind.field(n)))]))
            if alias[(i, n)] not in done:
                done.add(alias[(i, n)])
                typed.append(f"{fs.value} AS {quote_ident(alias[(i, n)])}")
                names.append(quote_ident(alias[(i, n)]))
            ok = _simpler_ok(fs.ok, quote_ident(texts[(expr, needs_trim(kind.field(n)))]))
            if ok and ok not in field_oks:
                field_oks.append(ok)
        oks.append(f"(NOT {into} OR ({' AND '.join(field_oks) or 'true'}))")
    if suspect:
        oks.append(f"NOT coalesce(({suspect}), true)")
    kept = [
        f"CASE WHEN __ok THEN NULL ELSE {quote_ident(r)} END AS {quote_ident(kept_column(r))}"
        for r in sources.values()
    ]
    if raw:
        kept.append(f"CASE WHEN __ok THEN NULL ELSE CAST(({raw}) AS VARCHAR) END AS __raw")
    last = (
        "SELECT * FROM c"
        if select_only
        else f"SELECT {', '.join(names)}, __ok{''.join(', ' + k for k in kept)} FROM c"
    )
    return (
        f"{'' if select_only else f'CREATE OR REPLACE TABLE {table} AS '}"
        f"WITH a AS (SELECT {', '.join(raw_cols)} FROM {source}), "
        f"b AS (SELECT {', '.join(text)} FROM a), "
        f"c AS (SELECT *, {''.join(t + ', ' for t in typed)}({' AND '.join(oks) or 'true'}) AS __ok FROM b) "
        f"{last}"
    )


def stored_columns(kind: RecordKind) -> list[str]:
    return [f.name for f in kind.arrow_schema()]


def output_select(
    connector: Connector,
    kind: RecordKind,
    i: int,
    out: Output,
    outputs: dict[str, tuple[int, Output]],
    staged: Staged,
    batch_id: str,
    ingested_at: datetime,
) -> tuple[str, list[str]]:
    """(select list, its columns): the kind's provenance, parent link and the fields the output
    maps, in schema order. Unmapped fields are left out of the file: Iceberg reads a column a
    data file does not hold (by field id) as null, as for files written before a field existed."""
    source = connector.source
    *_, alias = value_columns(connector)

    def v(j: int, name: str) -> str:
        return quote_ident(alias[(j, name)])

    keys = [key_text_sql(kind.field(k), v(i, k)) for k in kind.key]
    values = {
        "record_id": record_id_sql(kind.name, source, keys),
        "source": sql_str(source),
        "batch_id": sql_str(batch_id),
        "locator": staged.locator_sql("o.__row"),
        "ingested_at": f"{sql_str(ingested_at.isoformat())}::TIMESTAMPTZ",
    }
    if kind.parent:
        values[PARENT_COLUMN[0]] = _parent_sql(kind, i, out, outputs, source, v)
    for f in kind.fields:
        if f.name in out.fields:
            values[f.name] = v(i, f.name)
    assert set(PROVENANCE_NAMES) <= set(values)
    columns = [c for c in stored_columns(kind) if c in values]
    return ", ".join(f"{values[c]} AS {quote_ident(c)}" for c in columns), columns


def _parent_sql(
    kind: RecordKind,
    i: int,
    out: Output,
    outputs: dict[str, tuple[int, Output]],
    source: str,
    v: Callable[[int, str], str],
) -> str:
    parent = get_kind(kind.parent or "")
    if parent.name in outputs:  # the parent record made from the same source row
        j, _ = outputs[parent.name]
        return record_id_sql(
            parent.name, source, [key_text_sql(parent.field(k), v(j, k)) for k in parent.key]
        )
    keys = []
    for k in parent.key:  # the parent's key as this kind names it: declaration_id, declaration_version
        name = k if k in out.fields else f"{parent.name}_{k}"
        if name not in out.fields:
            return "NULL::VARCHAR"
        keys.append(key_text_sql(parent.field(k), v(i, name)))
    return record_id_sql(parent.name, source, keys)
