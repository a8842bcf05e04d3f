"""Reference tables behind the derived features, computed from the lake as of one snapshot.

- price bands: robust statistics (median and MAD of the log unit value) per HS6 x origin, HS6 and
  HS4, each per unit-value basis (customs value or item price), from past items not found
  fraudulent; a band needs ``min_band_count`` prices;
- history per group (importer, declarant, exporter, courier, office, HS, origin, pairs): past
  declarations (all and in the last 365 days), inspections and the smoothed fraud hit rate
  ``(frauds + m * prior) / (inspections + m)`` so a key seen once does not read as 0 % or 100 %;
- AEO status per party, the watch list, and the known code lists (for ``unknown_codes``).

Point-in-time rule: the aggregates describe the lake *as of* ``as_of``; scoring a new record uses
them as they are. Training must not see the future, so the labelled rows the reference was built
from are kept in ``events`` and :func:`compute_batch` with ``point_in_time=True`` recomputes every
history feature of a row from events strictly before the row's date (inspections count from the day
they were carried out).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import duckdb
import pyarrow as pa

from sciti.errors import SCITIError
from sciti.lake import open_lake, query
from sciti.model import load_codelists
from sciti.risk.errors import FeatureError
from sciti.risk.features.catalog import config
from sciti.risk.features.national import DEFAULT, National
from sciti.risk.features.prepare import (
    KEY_SEP,
    UNIT_VALUE_FIELDS,
    sql_float,
    sql_hs_prefix,
    sql_key,
    sql_text,
    sql_unit_value,
    sql_uv_basis,
)
from sciti.risk.features.spec import CASH_GROUP, CASH_WINDOW_DAYS, complete
from sciti.settings import Settings

# Keys derived from the commodity code and the unit value (prefixed ``__`` in the prepared rows).
DERIVED_KEYS = ("hs6", "hs4", "hs_chapter", "uv_basis")
log = logging.getLogger(__name__)
TABLES = ("meta", "bands", "history", "parties", "watchlist")
# Every band is per unit-value basis (customs value or item price) first; see prepare.sql_uv_basis.
BAND_LEVELS = (
    ("hs6_origin", ["uv_basis", "hs6", "country_of_origin"]),
    ("hs6", ["uv_basis", "hs6"]),
    ("hs4", ["uv_basis", "hs4"]),
)
_SOURCE_TABLES = (
    "std.declarations",
    "std.declaration_items",
    "std.inspection_results",
    "std.declaration_parties",
)


@dataclass
class Reference:
    """Lookup tables as of a lake snapshot; the same object serves batch and single-record features."""

    snapshot_id: str
    as_of: date
    prior: float
    prior_critical: float
    bands: pa.Table  # level, key, median_log, mad_log, median_uv, n
    # grp, key, declarations, declarations_365d (in the group's window), inspections, frauds,
    # flagged (cash: movements just below the threshold in the window), hit_rate, critical_rate
    history: pa.Table
    parties: pa.Table  # party_id, aeo_status
    watchlist: pa.Table  # value (upper-case identifiers and names)
    known: dict[str, frozenset[str]] = field(default_factory=dict)  # code list name -> codes
    events: pa.Table | None = None  # labelled prepared rows (kept when built, for point-in-time)
    # cash movements (key, declared_at, date, near) up to as_of, for point-in-time cash history
    cash_events: pa.Table | None = None
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    snapshots: dict[str, int] = field(default_factory=dict)  # source table -> snapshot (when built)
    national: National = DEFAULT  # the currency and cash threshold it was built for (settings)

    def __post_init__(self) -> None:
        if self.bands.num_rows and not _keyed_by_basis(self.bands):
            log.warning(
                "reference %s was built before price bands were kept per unit-value basis: no item "
                "will find a band until it is rebuilt (sciti risk train, or sciti risk reference build)",
                self.snapshot_id,
            )

    @cached_property
    def fallbacks(self) -> dict[str, float]:
        """Per rate feature, its value for a group with no past inspections: the overall rate."""
        out: dict[str, float] = {"hs_risk": self.prior, "origin_risk": self.prior}  # cargo kinds
        for g in history_groups():
            for stat, name in g["outputs"].items():
                if stat == "hit_rate":
                    out[name] = self.prior
                elif stat == "critical_rate":
                    out[name] = self.prior_critical
        return out

    @cached_property
    def lookups(self) -> dict[str, Any]:
        """Dicts for the single-record path, built once."""
        bands: dict[str, dict[str, tuple[float, float, float]]] = {lvl: {} for lvl, _ in BAND_LEVELS}
        for r in self.bands.to_pylist():
            bands[r["level"]][r["key"]] = (r["median_log"], r["mad_log"], r["median_uv"])
        hist: dict[str, dict[str, dict[str, float]]] = {}
        for r in self.history.to_pylist():
            hist.setdefault(r["grp"], {})[r["key"]] = r
        parties = {r["party_id"]: r["aeo_status"] for r in self.parties.to_pylist()}
        watch = set(self.watchlist.column("value").to_pylist()) if self.watchlist.num_rows else set()
        return {"bands": bands, "history": hist, "parties": parties, "watchlist": watch}

    def save(self, settings: Settings) -> None:
        """Write to the lake (risk.reference_*) for the real-time path to load."""
        save_reference(settings, self)

    @classmethod
    def load(cls, settings: Settings) -> Reference:
        """The reference last saved to the lake."""
        return load_reference(settings)

    def known_table(self, name: str) -> pa.Table:
        return pa.table({"code": pa.array(sorted(self.known.get(name, ())), pa.string())})


def _keyed_by_basis(bands: pa.Table) -> bool:
    """Whether any band key starts with its unit-value basis (decision 0069)."""
    keys = bands["key"]
    return any(
        pa.compute.any(pa.compute.starts_with(keys, basis + KEY_SEP)).as_py() for basis in ("value", "price")
    )


def history_groups() -> list[dict[str, Any]]:
    return list(config()["history"])


def prepared_sql(source: str) -> str:
    """Rows of ``source`` with the keys every reference statistic is grouped by."""
    cols = [
        "*",
        f"{sql_hs_prefix('hs_code', 6)} AS __hs6",
        f"{sql_hs_prefix('hs_code', 4)} AS __hs4",
        f"{sql_hs_prefix('hs_code', 2)} AS __hs_chapter",
        f"{sql_unit_value(*UNIT_VALUE_FIELDS)} AS __uv",
        f"{sql_uv_basis(*UNIT_VALUE_FIELDS[:2])} AS __uv_basis",
        "row_number() OVER (PARTITION BY declaration_id ORDER BY item_number) = 1 AS __first_item",
    ]
    return f"SELECT {', '.join(cols)} FROM {source}"


def _keyed(group: dict[str, Any]) -> str:
    return sql_key(["__" + c if c in DERIVED_KEYS else c for c in group["keys"]])


def build_reference_from(
    records: pa.Table,
    *,
    as_of: date,
    snapshot_id: str,
    known: dict[str, frozenset[str]],
    parties: pa.Table | None = None,
    watchlist: pa.Table | None = None,
    keep_events: bool = True,
    national: National = DEFAULT,
) -> Reference:
    """A Reference from labelled declaration rows (as :func:`lake_records` with labels returns them)."""
    cfg = config()
    m, min_count, days = float(cfg["smoothing"]), int(cfg["min_band_count"]), int(cfg["history_days"])
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("__records", _with_label_columns(complete("declaration", records)))
        asof = f"DATE '{as_of.isoformat()}'"
        con.execute(
            "CREATE TEMP TABLE ev AS SELECT *, coalesce(inspected_on, record_date) AS __seen "
            f"FROM ({prepared_sql('__records')}) WHERE record_date <= {asof}"
        )
        row = con.execute(
            f"""SELECT count(*) FILTER (WHERE inspected AND __seen <= {asof}),
                       count(*) FILTER (WHERE fraud AND __seen <= {asof}),
                       count(*) FILTER (WHERE fraud_severity = 2 AND __seen <= {asof})
                FROM ev WHERE __first_item"""
        ).fetchall()
        inspections, frauds, criticals = row[0]
        prior = (frauds + 1.0) / (inspections + 2.0)  # Laplace: defined on an empty lake too
        prior_critical = (criticals + 1.0) / (inspections + 2.0)
        bands = _bands(con, min_count)
        history = _history(con, asof, days, m, prior, prior_critical)
        events = con.sql("SELECT * FROM ev").to_arrow_table() if keep_events else None
    finally:
        con.close()
    return Reference(
        snapshot_id=snapshot_id,
        as_of=as_of,
        prior=prior,
        prior_critical=prior_critical,
        bands=bands,
        history=history,
        parties=parties
        if parties is not None
        else pa.table({"party_id": pa.array([], pa.string()), "aeo_status": pa.array([], pa.string())}),
        watchlist=watchlist if watchlist is not None else pa.table({"value": pa.array([], pa.string())}),
        known=known,
        events=events,
        national=national,
    )


def _with_label_columns(records: pa.Table) -> pa.Table:
    n = records.num_rows
    defaults = {
        "inspected": pa.array([False] * n),
        "fraud": pa.nulls(n, pa.bool_()),
        "fraud_severity": pa.nulls(n, pa.int64()),
        "inspected_on": pa.nulls(n, pa.date32()),
        "item_number": pa.array([1] * n, pa.int64()),
    }
    for name, arr in defaults.items():
        if name not in records.column_names:
            records = records.append_column(name, arr)
    if "record_date" not in records.column_names:  # rows not from lake_records: the acceptance date
        records = records.append_column("record_date", records["acceptance_date"].cast(pa.date32()))
    return records


def _bands(con: duckdb.DuckDBPyConnection, min_count: int) -> pa.Table:
    parts = []
    for level, keys in BAND_LEVELS:
        key = sql_key(["__" + k if k in DERIVED_KEYS else k for k in keys])
        parts.append(
            f"""SELECT '{level}' AS level, k AS key, med AS median_log,
                       median(abs(lv - med)) AS mad_log, exp(med) AS median_uv, count(*) AS n
                FROM (SELECT {key} AS k, ln(__uv) AS lv, median(ln(__uv)) OVER (PARTITION BY {key}) AS med
                      FROM ev WHERE __uv > 0 AND NOT coalesce(fraud, false) AND {key} IS NOT NULL)
                GROUP BY k, med HAVING count(*) >= {min_count}"""
        )
    return con.sql(" UNION ALL ".join(parts) + " ORDER BY level, key").to_arrow_table()


def _history(
    con: duckdb.DuckDBPyConnection, asof: str, days: int, m: float, prior: float, prior_critical: float
) -> pa.Table:
    parts = []
    for g in history_groups():
        unit = "__first_item" if g["unit"] == "declaration" else "true"
        parts.append(
            f"""SELECT '{g["group"]}' AS grp, {_keyed(g)} AS key,
                   CAST(count(*) AS DOUBLE) AS declarations,
                   CAST(count(*) FILTER (WHERE record_date > {asof} - INTERVAL {days} DAY) AS DOUBLE)
                       AS declarations_365d,
                   CAST(count(*) FILTER (WHERE inspected AND __seen <= {asof})
                       AS DOUBLE) AS inspections,
                   CAST(count(*) FILTER (WHERE fraud AND __seen <= {asof})
                       AS DOUBLE) AS frauds,
                   CAST(count(*) FILTER (WHERE fraud_severity = 2 AND __seen <= {asof})
                       AS DOUBLE) AS criticals, CAST(0 AS DOUBLE) AS flagged
                FROM ev WHERE {unit} AND {_keyed(g)} IS NOT NULL GROUP BY 2"""
        )
    sql = (
        f"SELECT grp, key, declarations, declarations_365d, inspections, frauds, flagged, "
        f"(frauds + {sql_float(m)} * {sql_float(prior)}) / (inspections + {sql_float(m)}) AS hit_rate, "
        f"(criticals + {sql_float(m)} * {sql_float(prior_critical)}) / (inspections + {sql_float(m)}) "
        "AS critical_rate "
        f"FROM ({' UNION ALL '.join(parts)}) ORDER BY grp, key"
    )
    return con.sql(sql).to_arrow_table()


# --- from the lake -----------------------------------------------------------------------------


def lake_snapshots(settings: Settings, as_of: Any = None) -> dict[str, int]:
    """The snapshot of each source table the features see (0: a table with no commit yet)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    found: dict[str, int] = {}
    for ident in _SOURCE_TABLES:
        if lake.exists(ident):
            table = lake.table(ident)
            snap = table.current_snapshot()
            if isinstance(as_of, datetime):
                snap = table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000), inclusive=True)
            found[ident] = snap.snapshot_id if snap else 0
    return found


def snapshot_hash(snapshots: dict[str, int]) -> str:
    """One short id for a lake state (what a reference and a model were built from)."""
    return hashlib.sha256(";".join(f"{i}@{s}" for i, s in snapshots.items()).encode()).hexdigest()[:16]


def lake_snapshot_id(settings: Settings, as_of: Any = None) -> str:
    """Identifies the lake state the features see: the snapshots of the source tables."""
    return snapshot_hash(lake_snapshots(settings, as_of))


def known_codes(settings: Settings) -> dict[str, frozenset[str]]:
    """Codes per code list, for ``unknown_codes``; empty (checks off, logged) if the lists are missing."""
    try:
        lists = load_codelists(settings.codelists_dir)
    except SCITIError as exc:
        log.warning("code lists unavailable, unknown-code features are off: %s", exc)
        return {}
    return {"hs": lists.hs6, "country": frozenset(lists.country), "currency": frozenset(lists.currency)}


def build_reference(settings: Settings, as_of: date | datetime | None = None) -> Reference:
    """Compute the reference tables from the lake (DuckDB), as of a date (default: today)."""
    from sciti.risk.features.records import lake_records

    day = as_of.date() if isinstance(as_of, datetime) else (as_of or datetime.now(UTC).date())
    until = day + timedelta(days=1)
    records = lake_records(settings, "declaration", until=until, labels=True)
    snapshots = lake_snapshots(settings)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    national = National.of(settings)
    ref = build_reference_from(
        records,
        as_of=day,
        snapshot_id=snapshot_hash(snapshots),
        known=known_codes(settings),
        parties=_parties(lake),
        watchlist=_watchlist(lake),
        national=national,
    )
    cash = _cash_history(lake, day, national.cash_threshold)
    if cash.num_rows:
        ref.history = pa.concat_tables([ref.history, cash.cast(ref.history.schema)])
    ref.cash_events = _cash_events(lake, day, national.cash_threshold)
    ref.snapshots = snapshots
    return ref


def _cash_history(lake, day: date, threshold: Decimal) -> pa.Table:
    """Cash movements per document number in the 90 days up to ``day``, and how many were just below
    the threshold (the real-time path: a live record is assessed as of now)."""
    if not lake.exists("std.currency_declarations"):
        return pa.table({})
    zero = sql_float(0.0)  # a bare 0.0 is DECIMAL(2,1) in DuckDB: 19.0 would not fit the history schema
    asof = f"DATE '{day.isoformat()}'"
    return query(
        lake,
        f"""SELECT '{CASH_GROUP}' AS grp, {sql_text("document_number")} AS key,
                   CAST(count(*) AS DOUBLE) AS declarations, CAST(count(*) AS DOUBLE) AS declarations_365d,
                   {zero} AS inspections, {zero} AS frauds,
                   CAST(count(*) FILTER (WHERE {_sql_near_threshold(threshold)}) AS DOUBLE) AS flagged,
                   {zero} AS hit_rate, {zero} AS critical_rate
            FROM std.currency_declarations
            WHERE {sql_text("document_number")} IS NOT NULL
              AND CAST(declared_at AS DATE) <= {asof}
              AND CAST(declared_at AS DATE) > {asof} - INTERVAL {CASH_WINDOW_DAYS} DAY
            GROUP BY 2 ORDER BY 2""",
    )


def _sql_near_threshold(threshold: Decimal, amount: str = "amount_national") -> str:
    """Whether an amount in national currency is just below the cash reporting threshold."""
    near = float(config()["near_threshold_share"])
    ratio = f"(TRY_CAST({amount} AS DOUBLE) / {sql_float(float(threshold))})"
    return f"coalesce({ratio} >= {sql_float(near)} AND {ratio} < 1.0, false)"


def _cash_events(lake, day: date, threshold: Decimal) -> pa.Table:
    """Every cash movement with a document number up to ``day`` (key, when, just below the
    threshold): the point-in-time path counts, per record, those of the 90 days before it."""
    if not lake.exists("std.currency_declarations"):
        return empty_cash_events()
    found = query(
        lake,
        f"""SELECT {sql_text("document_number")} AS key,
                   CAST(declared_at AS TIMESTAMPTZ) AS declared_at,
                   CAST(declared_at AS DATE) AS date,
                   {_sql_near_threshold(threshold)} AS near
            FROM std.currency_declarations
            WHERE {sql_text("document_number")} IS NOT NULL AND declared_at IS NOT NULL
              AND CAST(declared_at AS DATE) <= DATE '{day.isoformat()}'
            ORDER BY 1, 2""",
    )
    return found.cast(empty_cash_events().schema)


def empty_cash_events() -> pa.Table:
    return pa.table(
        {
            "key": pa.array([], pa.string()),
            "declared_at": pa.array([], pa.timestamp("us", tz="UTC")),
            "date": pa.array([], pa.date32()),
            "near": pa.array([], pa.bool_()),
        }
    )


def _parties(lake) -> pa.Table:
    if not lake.exists("std.declaration_parties"):
        return pa.table({"party_id": pa.array([], pa.string()), "aeo_status": pa.array([], pa.string())})
    return query(
        lake,
        f"""SELECT {sql_text("party_id")} AS party_id,
                   arg_max({sql_text("aeo_status")}, ingested_at) AS aeo_status
            FROM std.declaration_parties WHERE {sql_text("party_id")} IS NOT NULL
            GROUP BY 1 HAVING arg_max({sql_text("aeo_status")}, ingested_at) IS NOT NULL ORDER BY 1""",
    )


def _watchlist(lake) -> pa.Table:
    cfg = config()
    for ident in cfg["watchlist_tables"]:
        if not lake.exists(ident):
            continue
        names = set(lake.table(ident).schema().column_names)
        cols = [c for c in cfg["watchlist_columns"] if c in names]
        if not cols:
            continue
        union = " UNION ".join(f"SELECT upper({sql_text(c)}) AS value FROM {ident}" for c in cols)
        return query(lake, f"SELECT DISTINCT value FROM ({union}) WHERE value IS NOT NULL ORDER BY 1")
    return pa.table({"value": pa.array([], pa.string())})


# --- save / load (lake tables risk.reference_*) --------------------------------------------------


def save_reference(settings: Settings, ref: Reference) -> None:
    """Write the reference to the lake (risk.reference_*); the meta table is written last."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    for name in ("bands", "history", "parties", "watchlist"):
        table: pa.Table = getattr(ref, name)
        stamped = table.append_column(
            "snapshot_id", pa.array([ref.snapshot_id] * table.num_rows, pa.string())
        )
        lake.ensure_table(f"risk.reference_{name}", stamped.schema)
        lake.replace(f"risk.reference_{name}", stamped)
    meta = pa.table(
        {
            "snapshot_id": [ref.snapshot_id],
            "as_of": pa.array([ref.as_of], pa.date32()),
            "prior": [ref.prior],
            "prior_critical": [ref.prior_critical],
            "built_at": pa.array([ref.built_at], pa.timestamp("us", tz="UTC")),
            "params": [
                json.dumps(
                    {k: v for k, v in config().items() if k not in ("kinds", "history")}
                    | ref.national.params()
                )
            ],
        }
    )
    lake.ensure_table("risk.reference_meta", meta.schema)
    lake.replace("risk.reference_meta", meta)


def load_reference(settings: Settings) -> Reference:
    """The saved reference (raises FeatureError when none was built yet)."""
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    if not lake.exists("risk.reference_meta"):
        raise FeatureError(
            "no risk reference tables in the lake yet",
            remedy="build them with `sciti risk reference build` (or train a model, which builds them)",
        )
    meta = query(lake, "SELECT * FROM risk.reference_meta").to_pylist()[0]
    sid = meta["snapshot_id"]
    national = National.from_params(json.loads(meta.get("params") or "{}"))
    if national != National.of(settings):
        # Its near-threshold counts were made with another threshold: callers build one instead.
        problem = (
            f"the saved risk reference {sid} was built for {national.said()}, not for the settings' "
            f"{National.of(settings).said()} (national_currency, cash_reporting_threshold)"
        )
        log.warning("%s: not used", problem)
        raise FeatureError(
            problem,
            remedy="build it again with `sciti risk reference build` (or train a model, which builds it)",
        )
    tables = {}
    for name in ("bands", "history", "parties", "watchlist"):
        t = query(lake, f"SELECT * FROM risk.reference_{name} WHERE snapshot_id = '{sid}'")
        tables[name] = t.drop_columns(["snapshot_id"])
    return Reference(
        snapshot_id=sid,
        as_of=meta["as_of"],
        prior=meta["prior"],
        prior_critical=meta["prior_critical"],
        known=known_codes(settings),
        built_at=meta["built_at"],
        national=national,
        **tables,
    )
