"""Table-style rows whose records are already stored (decisions 0100 and 0105).

After the mapping pass, the rows about to be stored are checked, per output, against the rows
other batches stored in the output's table and against the other rows of the batch. A row is
judged whole (``stored_keys.Verdict``): stored, counted as already stored (every record of it is
stored with the same values), or quarantined.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from sciti.acquire.checks_sql import kinds, output_select, value_columns
from sciti.acquire.connector import Connector
from sciti.acquire.formats.tabular import Staged, quote_ident
from sciti.acquire.stored_keys import NOT_VALUES, Changes, Conflict, StoredIds, Verdict, differing
from sciti.acquire.validation import Problem
from sciti.model import RecordKind
from sciti.model.sql import key_text_sql, record_id_sql


def rid_sql(connector: Connector, kind: RecordKind, i: int) -> str:
    """Output ``i``'s record id over the mapping pass's columns (as ``output_select`` stores it)."""
    *_, alias = value_columns(connector)
    keys = [key_text_sql(kind.field(k), quote_ident(alias[(i, k)])) for k in kind.key]
    return record_id_sql(kind.name, connector.source, keys)


def check_rows(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    vals: str,
    checks: dict[int, StoredIds],
    bad: dict[int, list[Problem]],
    batch_id: str,
    ingested_at: datetime,
    unit_of: Callable[[str], str] | None,
    changes: Changes | None = None,
) -> set[int]:
    """Judge the rows about to be stored that hold, for any output, a record another batch already
    stored (``checks``) or another row of this batch holds: one query per output finds them (a
    semi-join against the stored ids, a count by record id); values are read only for those rows.
    Rows to quarantine are added to ``bad``; the rows whose records are all stored already with the
    same values are returned, to be counted and not stored (decision 0105). A connector with
    ``on_change: replace`` (decision 0112) has the rows that replace stored records noted in
    ``changes`` and stored, not quarantined."""
    received = ingested_at if changes is not None and connector.on_change == "replace" else None
    outputs = kinds(connector)
    by_kind = {o.kind: (j, o) for j, o, _ in outputs}
    found: dict[int, dict[int, bool]] = {}  # output -> row -> its record id is stored elsewhere
    for i, _, kind in outputs:
        rid = rid_sql(connector, kind, i)
        in_stored = f"rid IN (SELECT record_id FROM __stored{i})" if i in checks else "false"
        # The stored ids are read once (named twice, the semi-join would read every file twice).
        found[i] = dict(
            con.execute(
                f"WITH r AS (SELECT __row, {rid} AS rid FROM {vals} AS o WHERE __in{i}), "
                f"f AS (SELECT __row, count(*) OVER (PARTITION BY rid) AS n, {in_stored} AS s FROM r) "
                "SELECT __row, s FROM f WHERE n > 1 OR s"
            ).fetchall()
        )
    rows = sorted({row for hits in found.values() for row in hits} - set(bad))  # already rejected: as is
    if not rows:
        return set()
    con.register("found_rows", pa.table({"__row": pa.array(rows, pa.int64())}))
    applies = con.execute(
        f"SELECT __row, [{', '.join(f'__in{i}' for i, _, _ in outputs)}] FROM {vals} "
        "WHERE __row IN (SELECT __row FROM found_rows)"
    ).fetchall()
    same = {
        i: _same_as_stored(con, connector, staged, vals, i, checks[i], batch_id, ingested_at) for i in checks
    }
    # A row whose every record is stored with the same values is counted, values unread (a file
    # sent again is mostly such rows); the others are judged on their values below.
    already = {
        row
        for row, flags in applies
        if any(flags) and all(row in same.get(i, ()) for i, applies_to in enumerate(flags) if applies_to)
    }
    rows = [row for row in rows if row not in already]
    con.register("found_rows", pa.table({"__row": pa.array(rows, pa.int64())}))
    news: dict[int, dict[int, dict[str, Any]]] = {}  # output -> row -> its record (rows it applies to)
    olds: dict[int, dict[str, dict[str, Any]]] = {}
    for i, out, kind in outputs:
        select, _ = output_select(connector, kind, i, out, by_kind, staged, batch_id, ingested_at)
        new = con.sql(
            f"SELECT o.__row AS __row, {select} FROM {vals} AS o "
            f"WHERE __in{i} AND __row IN (SELECT __row FROM found_rows)"
        ).to_arrow_table()
        news[i] = {r.pop("__row"): r for r in new.to_pylist()}
        ids = sorted({news[i][row]["record_id"] for row, hit in found[i].items() if hit and row in news[i]})
        olds[i] = checks[i].rows(con, ids) if i in checks else {}
    con.unregister("found_rows")
    kept: dict[tuple[int, str], dict[str, Any]] = {}  # (output, record id) -> the stored copy's row
    for row in rows:  # in source order: the first copy stored is the one later copies meet
        verdict = Verdict()
        mine = []
        for i, _, kind in outputs:
            values = news[i].get(row)
            if values is None:  # the output does not apply to this row
                continue
            rec_id = values["record_id"]
            # An earlier row's copy first: one this batch replaces is also stored by another batch.
            earlier = kept.get((i, rec_id))
            base = olds[i].get(rec_id) if earlier is None and found[i].get(row) else None
            if base is not None or earlier is not None:
                old = base if base is not None else earlier
                assert old is not None
                mine_before = base is None or base.get("batch_id") == batch_id  # an earlier part's
                verdict.conflicts.append(Conflict(kind, values, old, differing(values, old), mine_before))
            else:
                verdict.fresh.append((kind, functools.partial(dict, values)))
            mine.append((i, rec_id, values))
        outcome, why = verdict.outcome(unit_of or (lambda _b: ""), received)
        if outcome == "replace" and changes is not None:
            changes.add(verdict.conflicts)
        if outcome in ("store", "replace"):
            for i, rec_id, values in mine:
                kept[(i, rec_id)] = values
        elif outcome == "already":
            already.add(row)
        else:
            bad.setdefault(row, []).append((None, why or ""))
    return already


def _same_as_stored(
    con: duckdb.DuckDBPyConnection,
    connector: Connector,
    staged: Staged,
    vals: str,
    i: int,
    stored: StoredIds,
    batch_id: str,
    ingested_at: datetime,
) -> set[int]:
    """The rows (of ``found_rows``) whose record for output ``i`` another batch stored with the
    same values: one join of their records with the stored rows, compared in SQL (every value field
    the output maps; a field no stored file holds is null), as ``differing`` compares them."""
    outputs = kinds(connector)
    by_kind = {o.kind: (j, o) for j, o, _ in outputs}
    _, out, kind = outputs[i]
    select, columns = output_select(connector, kind, i, out, by_kind, staged, batch_id, ingested_at)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __new AS SELECT o.__row AS __row, {select} FROM {vals} AS o "
        f"WHERE __in{i} AND __row IN (SELECT __row FROM found_rows) "
        f"AND record_id IN (SELECT record_id FROM __stored{i})"
    )
    ids = [r[0] for r in con.execute("SELECT DISTINCT record_id FROM __new").fetchall()]
    have = set(stored.register(con, "__old", ids))
    same = " AND ".join(
        f"n.{quote_ident(c)} IS NOT DISTINCT FROM o.{quote_ident(c)}"
        if c in have
        else f"n.{quote_ident(c)} IS NULL"
        for c in columns
        if c not in NOT_VALUES
    )
    found = con.execute(
        f"SELECT n.__row FROM __new AS n JOIN __old AS o USING (record_id) WHERE {same or 'true'}"
    ).fetchall()
    con.execute("DROP TABLE __new")
    con.execute("DROP TABLE __old")
    return {r[0] for r in found}
