"""Subject rows of a kind from the lake, for dry-runs, batch scoring, training and evaluation.

A declaration's subject is one goods item: the header joined with each item (the item's value wins
where both carry a field). Only the latest version of each declaration is used: an amendment
replaces what it amends. A consignment's row also carries its manifest's ``customs_office`` (the
office where it is handled), mode of transport, places and dates (features.yaml ``from_parent``).
Each row's ``record_date`` is the date it is assessed for (``spec.DATE_COLUMNS``: a consignment's
manifest's arrival, else departure, else issue date), else the day SCITI stored it. With
``labels=True`` each row also carries the inspection outcome of its declaration (``inspected``,
``fraud``, ``fraud_severity``, ``selection_reason``, ``inspected_on``, ``revenue_raised``); a
declaration that was never inspected has ``inspected = false`` and NULL labels.
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.model.sql import SQL_TYPES
from sciti.risk.features.catalog import _kind_config, parent_fields
from sciti.risk.features.prepare import sql_first_date
from sciti.risk.features.spec import date_fields
from sciti.settings import Settings

LABEL_COLUMNS = ("inspected", "fraud", "fraud_severity", "selection_reason", "inspected_on", "revenue_raised")


def _header_item_select() -> str:
    item_fields = [f.name for f in get_kind("declaration_item").fields if f.name != "declaration_version"]
    header = [f.name for f in get_kind("declaration").fields if f.name not in item_fields]
    cols = ["i.record_id AS record_id", "d.record_id AS declaration_record_id", "d.source AS source"]
    cols += [f"d.{c}" for c in header] + [f"i.{c}" for c in item_fields]
    return ", ".join(cols)


def _labels_sql() -> str:
    # One outcome per declaration: fraud if any control established it; the latest date and reason.
    return """
      SELECT declaration_id,
             bool_or(coalesce(fraud, false)) AS fraud,
             max(coalesce(fraud_severity, CASE WHEN fraud THEN 1 ELSE 0 END)) AS fraud_severity,
             arg_max(selection_reason, inspected_on) AS selection_reason,
             max(inspected_on) AS inspected_on,
             sum(CAST(revenue_raised AS DOUBLE)) AS revenue_raised
      FROM std.inspection_results
      WHERE target_kind = 'declaration' AND outcome <> 'not_performed' AND declaration_id IS NOT NULL
      GROUP BY declaration_id"""


def _window(date_expr: str, since: date | datetime | None, until: date | datetime | None) -> str:
    conds = []
    if since is not None:
        conds.append(f"{date_expr} >= DATE '{_as_date(since).isoformat()}'")
    if until is not None:
        conds.append(f"{date_expr} < DATE '{_as_date(until).isoformat()}'")
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def records_sql(kind: str, since=None, until=None, labels: bool = False, with_parent: bool = True) -> str:
    """The SQL lake_records runs (also usable by others that stream rows). A kind that takes fields
    from its parent record (``parent_fields``) is joined to the parent's table; ``with_parent``
    False (that table does not exist yet) gives those fields as NULL."""
    _kind_config(kind)  # raises for a kind without risk scope
    if kind == "declaration":
        body = f"""
          SELECT {_header_item_select()},
                 {sql_first_date([(f"d.{c}", ts) for c, ts in date_fields(kind)])} AS record_date
          FROM std.declarations d
          JOIN std.declaration_items i ON i.parent_record_id = d.record_id
          QUALIFY d.version = max(d.version) OVER (PARTITION BY d.source, d.declaration_id)"""
        if labels:
            body = f"""
              SELECT r.*, l.declaration_id IS NOT NULL AS inspected, l.fraud, l.fraud_severity,
                     l.selection_reason, l.inspected_on, l.revenue_raised
              FROM ({body}) r LEFT JOIN ({_labels_sql()}) l ON l.declaration_id = r.declaration_id"""
    else:
        k = get_kind(kind)
        cols = [f"t.{c}" for c in ("record_id", "source", *k.field_names)]
        source = f"{k.ident} t"
        taken = {f.name: f for f in parent_fields(kind)}
        if taken and with_parent:
            # The parent by the link the access policy's row scope follows (not by manifest_id,
            # which two carriers may share): the office a row is scored for is the office that sees it.
            source += f" LEFT JOIN {get_kind(k.parent or '').ident} par ON par.record_id = t.parent_record_id"
            cols += [f"par.{name} AS {name}" for name in taken]
        else:  # no parent table yet: the fields are unknown, as for a record without a parent
            cols += [f"CAST(NULL AS {SQL_TYPES[f.type]}) AS {name}" for name, f in taken.items()]
        # The record's date fields (a consignment's: its manifest's), else the day SCITI stored it.
        dated = [
            (f"par.{c}" if c in taken else f"t.{c}", ts)
            for c, ts in date_fields(kind)
            if c not in taken or with_parent
        ]
        expr = sql_first_date([*dated, ("t.ingested_at", True)])
        body = f"SELECT {', '.join(cols)}, {expr} AS record_date FROM {source}"
    return f"SELECT * FROM ({body}) x{_window('x.record_date', since, until)} ORDER BY record_date, record_id"


def lake_records(
    settings: Settings,
    kind: str,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    *,
    labels: bool = False,
    as_of: int | str | datetime | None = None,
) -> pa.Table:
    """Subject rows of ``kind`` with ``record_id`` and ``record_date`` (since <= date < until)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    needed = (
        {"std.declarations", "std.declaration_items"} if kind == "declaration" else {get_kind(kind).ident}
    )
    if not all(lake.exists(t) for t in needed):
        return _empty(kind, labels)
    parent = get_kind(kind).parent
    with_parent = bool(parent_fields(kind)) and lake.exists(get_kind(parent or "").ident)
    if labels and not lake.exists("std.inspection_results"):
        table = query(
            lake, records_sql(kind, since, until, labels=False, with_parent=with_parent), as_of=as_of
        )
        n = table.num_rows
        return (
            table.append_column("inspected", pa.array([False] * n))
            .append_column("fraud", pa.nulls(n, pa.bool_()))
            .append_column("fraud_severity", pa.nulls(n, pa.int64()))
            .append_column("selection_reason", pa.nulls(n, pa.string()))
            .append_column("inspected_on", pa.nulls(n, pa.date32()))
            .append_column("revenue_raised", pa.nulls(n, pa.float64()))
        )
    return query(lake, records_sql(kind, since, until, labels=labels, with_parent=with_parent), as_of=as_of)


def _empty(kind: str, labels: bool) -> pa.Table:
    fields = [pa.field("record_id", pa.string())]
    for base in _kind_config(kind)["base"]:
        for f in get_kind(base).fields:
            if f.name != "declaration_version" and f.name not in {x.name for x in fields}:
                fields.append(pa.field(f.name, f.arrow_type))
    fields += [pa.field(f.name, f.arrow_type) for f in parent_fields(kind)]
    fields.append(pa.field("record_date", pa.date32()))
    if labels:
        fields += [
            pa.field("inspected", pa.bool_()),
            pa.field("fraud", pa.bool_()),
            pa.field("fraud_severity", pa.int64()),
            pa.field("selection_reason", pa.string()),
            pa.field("inspected_on", pa.date32()),
            pa.field("revenue_raised", pa.float64()),
        ]
    return pa.schema(fields).empty_table()
