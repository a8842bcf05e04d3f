"""One DuckDB connection per page: every lake table the page reads, through the caller's policy.

Opening a lake connection (catalog lookups, snapshot planning, views) costs more than a small
aggregate, so a page that needs several tables opens one :class:`LakeView` for all of them and
runs its queries on it. Row filters and masks come from ``sciti.access.DataPolicy`` exactly as for
the SQL path. ``need_to_know=False`` is for dashboards that show only aggregates to holders of
``risk.report`` or similar: the tables are visible even without ``sql.query``, still row-filtered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from sciti.access import DataPolicy, Principal
from sciti.lake import Lake
from sciti.lake.query import connect
from sciti.lake.views import ViewRule


class LakeView:
    def __init__(self, conn: duckdb.DuckDBPyConnection, tables: set[str]):
        self.conn = conn
        self.tables = tables  # the tables the caller may read (a view exists if the lake has them)

    def rows(self, table: str, sql: str) -> list[dict[str, Any]] | None:
        """The query's rows, or None when ``table`` is absent or not readable by the caller."""
        if table not in self.tables:
            return None
        try:
            return self.conn.sql(sql).to_arrow_table().to_pylist()
        except duckdb.CatalogException:  # not in the lake yet (nothing ingested): no view was made
            return None


def _rules(policy: DataPolicy, tables: Iterable[str], need_to_know: bool) -> dict[str, ViewRule]:
    if need_to_know:
        return policy.rules(set(tables))
    out: dict[str, ViewRule] = {}
    todo = list(tables)
    while todo:  # the tables' row filters may read other tables (e.g. an office mapping)
        ident = todo.pop()
        if ident not in out:
            out[ident] = policy.rule(ident)
            todo.extend(d for d in out[ident].depends if d not in out)
    return out


@contextmanager
def lake_view(
    lake: Lake, principal: Principal, tables: Iterable[str], *, need_to_know: bool = True
) -> Iterator[LakeView]:
    rules = _rules(DataPolicy(principal), tables, need_to_know)
    if not rules:
        conn = duckdb.connect(config={"autoinstall_known_extensions": False, "enable_external_access": False})
    else:
        # The statement only names the tables, so that connect() creates their views; it never runs.
        conn = connect(lake, "SELECT * FROM " + ", ".join(sorted(rules)), tables=set(rules), rules=rules)
    try:
        yield LakeView(conn, set(rules))
    finally:
        conn.close()


__all__ = ["LakeView", "lake_view"]
