"""Features for many records at once: one DuckDB query over Arrow, no Python loop over rows.

Every expression comes from :mod:`prepare` (the single-record path uses the Python twins), so
``compute_batch`` and ``compute_one`` give the same values (tested on thousands of records).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from sciti.risk.features.catalog import _kind_config, config, feature_names
from sciti.risk.features.prepare import (
    UNIT_VALUE_FIELDS,
    sql_first_date,
    sql_float,
    sql_hs_prefix,
    sql_key,
    sql_number,
    sql_text,
    sql_unit_value,
    sql_upper,
    sql_uv_basis,
)
from sciti.risk.features.reference import BAND_LEVELS, DERIVED_KEYS, Reference, history_groups
from sciti.risk.features.spec import (
    CASH_GROUP,
    CASH_WINDOW_DAYS,
    ORIGIN_COLUMN,
    WATCH_COLUMNS,
    code_checks,
    complete,
    date_fields,
    features_of,
)

ROW = "__row"
GIVEN_DATE = "__given_date"


def compute_batch(kind: str, records: pa.Table, ref: Reference, *, point_in_time: bool = False) -> pa.Table:
    """``records`` plus one column per derived feature of ``kind`` (same row order).

    ``point_in_time=True`` (training, evaluation, history dry-runs): history features of each row
    come only from events strictly before the row's date (needs a reference built with its events);
    cash movements per person from those declared before the row within the 90 days before its date.
    """
    _kind_config(kind)
    if point_in_time and ref.events is None:
        raise ValueError("point-in-time features need a Reference built with keep_events=True")
    feats = feature_names(kind)
    inp = records.drop_columns([c for c in feats if c in records.column_names])
    inp = complete(kind, inp).append_column(ROW, pa.array(range(inp.num_rows), pa.int64()))
    # A lake row's own date (records_sql: else the day SCITI stored it) where its fields give none.
    given = records["record_date"] if "record_date" in records.column_names else None
    inp = inp.append_column(GIVEN_DATE, given if given is not None else pa.nulls(inp.num_rows, pa.date32()))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("__in", inp)
        _register_reference(con, ref)
        sql, joins = _select(kind, ref, point_in_time, con)
        out = con.sql(f"SELECT {sql} FROM __p p {joins} ORDER BY p.{ROW}").to_arrow_table()
    finally:
        con.close()
    keep = [c for c in records.column_names if c not in feats]
    return pa.Table.from_arrays(
        [out.column(c) for c in keep] + [out.column(f) for f in feats], names=keep + feats
    )


def _register_reference(con: duckdb.DuckDBPyConnection, ref: Reference) -> None:
    for level, _ in BAND_LEVELS:
        con.register(f"__band_{level}", ref.bands.filter(pa.compute.equal(ref.bands["level"], level)))
    con.register("__hist", ref.history)
    con.register("__parties", ref.parties)
    con.register("__watch", ref.watchlist)
    for name in ("hs", "country", "currency"):
        con.register(f"__known_{name}", ref.known_table(name))


def _hist_join(alias: str, group: str, key: str) -> str:
    return f"LEFT JOIN (SELECT * FROM __hist WHERE grp = '{group}') {alias} ON {alias}.key = {key}"


def _select(kind: str, ref: Reference, pit: bool, con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    cfg = config()
    wanted = features_of(kind)
    dated = [*date_fields(kind), (GIVEN_DATE, False)]  # over __in: unqualified
    pre = [f"{sql_first_date(dated)} AS record_date"]
    if "hs6" in wanted:
        pre += [
            f"{sql_hs_prefix('hs_code', n)} AS {name}"
            for name, n in (("hs6", 6), ("hs4", 4), ("hs_chapter", 2))
        ]
    if "unit_value" in wanted:
        pre.append(f"{sql_unit_value(*UNIT_VALUE_FIELDS)} AS unit_value")
        pre.append(f"{sql_uv_basis(*UNIT_VALUE_FIELDS[:2])} AS uv_basis")
    con.execute(f"CREATE TEMP VIEW __p AS SELECT *, {', '.join(pre)} FROM __in")
    cols: dict[str, str] = {"record_date": "p.record_date"}
    joins: list[str] = []
    if "hs6" in wanted:
        cols |= {"hs6": "p.hs6", "hs4": "p.hs4", "hs_chapter": "p.hs_chapter"}
    if "unit_value" in wanted:
        cols["unit_value"] = "p.unit_value"
        _bands(cols, joins, float(cfg["min_mad"]))
    prior, prior_c = sql_float(ref.prior), sql_float(ref.prior_critical)
    if kind == "declaration":
        groups = history_groups()
        if pit:
            _pit_tables(con, ref, groups)
        for i, g in enumerate(groups):
            key = sql_key([f"p.{c}" for c in g["keys"]])
            alias = f"h{i}"
            if pit:
                _pit_group(con, i, key, int(cfg["history_days"]) + 1)
                joins.append(f"LEFT JOIN __pit_{i} {alias} ON {alias}.{ROW} = p.{ROW}")
                decl, insp, fr, cr = f"{alias}.cd", f"{alias}.ci", f"{alias}.cf", f"{alias}.cc"
                d365 = f"(coalesce({alias}.cd, 0) - coalesce({alias}.cdw, 0))"
                m = sql_float(cfg["smoothing"])
                rate = f"(coalesce({fr}, 0) + {m} * {prior}) / (coalesce({insp}, 0) + {m})"
                crate = f"(coalesce({cr}, 0) + {m} * {prior_c}) / (coalesce({insp}, 0) + {m})"
            else:
                joins.append(_hist_join(alias, g["group"], key))
                decl, insp = f"{alias}.declarations", f"{alias}.inspections"
                d365, rate = f"coalesce({alias}.declarations_365d, 0)", f"coalesce({alias}.hit_rate, {prior})"
                crate = f"coalesce({alias}.critical_rate, {prior_c})"
            for stat, name in g["outputs"].items():
                cols[name] = {
                    "declarations_365d": d365,
                    "declarations": f"coalesce({decl}, 0)",
                    "inspections": f"coalesce({insp}, 0)",
                    "hit_rate": rate,
                    "critical_rate": crate,
                    "first_time": f"CASE WHEN {key} IS NULL THEN NULL ELSE coalesce({decl}, 0) = 0 END",
                }[stat]
        dispatch, origin = sql_text("p.country_of_dispatch"), sql_text("p.country_of_origin")
        hubs = ", ".join(f"'{h}'" for h in cfg["transhipment_hubs"])
        differs = f"coalesce({origin} <> {dispatch}, false)"
        cols["origin_differs_dispatch"] = differs
        cols["route_transhipment"] = f"({differs} AND {dispatch} IN ({hubs}))"
        joins.append(f"LEFT JOIN __parties pa ON pa.party_id = {sql_text('p.importer_id')}")
        cols["aeo"] = "pa.aeo_status IS NOT NULL"
        cols["aeo_partner_mra"] = f"coalesce(starts_with(pa.aeo_status, '{cfg['aeo_mra_prefix']}'), false)"
    elif kind in ("consignment", "road_cargo_info"):
        origin = sql_text(f"p.{ORIGIN_COLUMN[kind]}")
        joins.append(_hist_join("hh", "hs", "p.hs6"))
        joins.append(_hist_join("ho", "origin", origin))
        cols["hs_risk"] = f"coalesce(hh.hit_rate, {prior})"
        cols["origin_risk"] = f"coalesce(ho.hit_rate, {prior})"
        if kind == "consignment":
            rec, load = sql_text("p.receipt_location"), sql_text("p.loading_location")
            cols["route_transhipment"] = f"coalesce(left({rec}, 2) <> left({load}, 2), false)"
    elif kind == "currency_declaration":
        threshold = sql_float(float(ref.national.cash_threshold))  # the settings', as the reference keeps it
        near = sql_float(cfg["near_threshold_share"])
        ratio = f"({sql_number('p.amount_national')} / {threshold})"
        cols["threshold_ratio"] = ratio
        cols["just_below_threshold"] = f"coalesce({ratio} >= {near} AND {ratio} < 1.0, false)"
        if pit:  # per record: the movements declared before it in the 90 days before its date
            _pit_cash(con, ref)
            joins.append(f"LEFT JOIN __pit_cash hc ON hc.{ROW} = p.{ROW}")
            cols["person_movements_90d"] = "coalesce(hc.movements, 0)"
            cols["person_near_threshold_90d"] = "coalesce(hc.near, 0)"
        else:  # as of the reference (real time: a live record is "now")
            joins.append(_hist_join("hc", CASH_GROUP, sql_text("p.document_number")))
            cols["person_movements_90d"] = "coalesce(hc.declarations_365d, 0)"
            cols["person_near_threshold_90d"] = "coalesce(hc.flagged, 0)"
    watch = [
        f"coalesce({sql_upper('p.' + c)} IN (SELECT value FROM __watch), false)" for c in WATCH_COLUMNS[kind]
    ]
    cols["watchlist_hit"] = "(" + " OR ".join(watch) + ")"
    unknown = []
    for name, codelist, looked_up in code_checks(kind, ref.known):
        value = "p.hs6" if looked_up == "hs6" else sql_text(f"p.{looked_up}")
        present = sql_text(f"p.{name}")
        unknown.append(
            f"CASE WHEN {present} IS NOT NULL AND ({value} IS NULL OR {value} NOT IN "
            f"(SELECT code FROM __known_{codelist})) THEN '{name}' END"
        )
    cols["unknown_codes"] = f"concat_ws(',', {', '.join(unknown)})" if unknown else "''"
    cols["unknown_code_count"] = (
        "CAST(" + " + ".join(f"({u} IS NOT NULL)::INT" for u in unknown) + " AS DOUBLE)"
        if unknown
        else sql_float(0.0)  # a bare 0.0 would be DECIMAL(2,1)
    )
    missing = wanted - set(cols)
    if missing:
        raise AssertionError(f"features without a definition for {kind}: {sorted(missing)}")
    select = [
        f"p.* EXCLUDE ({GIVEN_DATE}, record_date"
        + (", hs6, hs4, hs_chapter" if "hs6" in wanted else "")
        + (", unit_value, uv_basis" if "unit_value" in wanted else "")
        + ")"
    ]
    select += [f"{expr} AS {name}" for name, expr in cols.items()]
    return ", ".join(select), " ".join(joins)


def _bands(cols: dict[str, str], joins: list[str], min_mad: float) -> None:
    for level, keys in BAND_LEVELS:
        key = sql_key([f"p.{k}" for k in keys])
        joins.append(f"LEFT JOIN __band_{level} b_{level} ON b_{level}.key = {key}")
    levels = [lvl for lvl, _ in BAND_LEVELS]

    def pick(col: str) -> str:
        return "coalesce(" + ", ".join(f"b_{lvl}.{col}" for lvl in levels) + ")"

    basis = " ".join(f"WHEN b_{lvl}.key IS NOT NULL THEN '{lvl}'" for lvl in levels)
    cols["reference_unit_value"] = pick("median_uv")
    cols["reference_basis"] = f"CASE {basis} ELSE 'none' END"
    cols["unit_value_ratio"] = f"p.unit_value / {pick('median_uv')}"
    cols["unit_value_band_z"] = (
        f"CASE WHEN p.unit_value > 0 THEN (ln(p.unit_value) - {pick('median_log')}) / "
        f"(1.4826 * greatest({pick('mad_log')}, {sql_float(min_mad)})) END"
    )


def _pit_group(con: duckdb.DuckDBPyConnection, i: int, key: str, window_days: int) -> None:
    """History of one group before each row's date: two ASOF joins on (key, date) only."""
    con.execute(
        f"""CREATE TEMP TABLE __pit_{i} AS
            WITH q AS (SELECT p.{ROW}, {key} AS key, p.record_date AS date FROM __p p
                       WHERE {key} IS NOT NULL AND p.record_date IS NOT NULL)
            SELECT q.{ROW}, c.cd, c.ci, c.cf, c.cc, w.cd AS cdw
            FROM q ASOF LEFT JOIN __cum_{i} c ON c.key = q.key AND q.date > c.date
                   ASOF LEFT JOIN __cum_{i} w
                       ON w.key = q.key AND q.date - INTERVAL {window_days} DAY >= w.date"""
    )


def _pit_cash(con: duckdb.DuckDBPyConnection, ref: Reference) -> None:
    """Cash movements of each record's document number declared before it (earlier ``declared_at``,
    so never the record itself) and within the 90 days before its date; and how many of those were
    just below the threshold. The real-time path reads the same counts as of now from the reference."""
    if ref.cash_events is None:
        raise ValueError("point-in-time cash features need a Reference built from the lake (build_reference)")
    con.register("__cash", ref.cash_events)
    con.execute(
        f"""CREATE TEMP TABLE __pit_cash AS
            WITH q AS (SELECT p.{ROW}, {sql_text("p.document_number")} AS key, p.record_date AS date,
                              TRY_CAST(p.declared_at AS TIMESTAMPTZ) AS ts
                       FROM __p p)
            SELECT q.{ROW}, CAST(count(*) AS DOUBLE) AS movements,
                   CAST(count(*) FILTER (WHERE e.near) AS DOUBLE) AS near
            FROM q JOIN __cash e
              ON e.key = q.key AND e.declared_at < q.ts
             AND e.date > q.date - INTERVAL {CASH_WINDOW_DAYS} DAY
            GROUP BY q.{ROW}"""
    )


def _pit_tables(con: duckdb.DuckDBPyConnection, ref: Reference, groups: list[dict]) -> None:
    """Cumulative daily counts per history key, for ASOF joins (point-in-time features)."""
    con.register("__ev", ref.events)
    for i, g in enumerate(groups):
        key = sql_key(["__" + c if c in DERIVED_KEYS else c for c in g["keys"]])
        unit = "__first_item" if g["unit"] == "declaration" else "true"
        con.execute(
            f"""CREATE TEMP TABLE __cum_{i} AS
                SELECT key, date,
                       CAST(sum(d) OVER w AS DOUBLE) AS cd, CAST(sum(ins) OVER w AS DOUBLE) AS ci,
                       CAST(sum(f) OVER w AS DOUBLE) AS cf, CAST(sum(c) OVER w AS DOUBLE) AS cc
                FROM (SELECT key, date, sum(d) AS d, sum(ins) AS ins, sum(f) AS f, sum(c) AS c FROM (
                        SELECT {key} AS key, record_date AS date, 1 AS d, 0 AS ins, 0 AS f, 0 AS c
                        FROM __ev WHERE {unit} AND record_date IS NOT NULL
                        UNION ALL
                        SELECT {key}, coalesce(inspected_on, record_date), 0, 1,
                               CASE WHEN fraud THEN 1 ELSE 0 END,
                               CASE WHEN fraud_severity = 2 THEN 1 ELSE 0 END
                        FROM __ev
                        WHERE {unit} AND inspected AND coalesce(inspected_on, record_date) IS NOT NULL)
                      WHERE key IS NOT NULL GROUP BY key, date)
                WINDOW w AS (PARTITION BY key ORDER BY date ROWS UNBOUNDED PRECEDING)"""
        )
