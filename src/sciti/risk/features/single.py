"""Features for one record in plain Python (dict lookups): the real-time twin of :mod:`batch`."""

from __future__ import annotations

import math
from typing import Any

from sciti.risk.features.catalog import _feature_names, _kind_config, config
from sciti.risk.features.prepare import (
    UNIT_VALUE_FIELDS,
    py_first_date,
    py_hs_prefix,
    py_key,
    py_number,
    py_text,
    py_unit_value,
    py_upper,
    py_uv_basis,
)
from sciti.risk.features.reference import BAND_LEVELS, Reference, history_groups
from sciti.risk.features.spec import (
    CASH_GROUP,
    ORIGIN_COLUMN,
    WATCH_COLUMNS,
    code_checks,
    date_fields,
    features_of,
)


def compute_one(kind: str, record: dict[str, Any], ref: Reference) -> dict[str, Any]:
    """``record`` plus its derived features (as-of the reference; same values as compute_batch)."""
    _kind_config(kind)
    cfg = config()
    look = ref.lookups
    wanted = features_of(kind)
    r = record.get
    out: dict[str, Any] = {k: v for k, v in record.items() if k not in wanted}
    # As compute_batch: the record's date fields, else a lake row's own date (a request has none).
    dated = [(r(c), ts) for c, ts in date_fields(kind)] + [(r("record_date"), False)]
    f: dict[str, Any] = {"record_date": py_first_date(dated)}
    hs6 = hs4 = None
    if "hs6" in wanted:
        hs6, hs4 = py_hs_prefix(r("hs_code"), 6), py_hs_prefix(r("hs_code"), 4)
        f |= {"hs6": hs6, "hs4": hs4, "hs_chapter": py_hs_prefix(r("hs_code"), 2)}
    if "unit_value" in wanted:
        uv = py_unit_value(*(r(c) for c in UNIT_VALUE_FIELDS))
        parts = {"uv_basis": py_uv_basis(r(UNIT_VALUE_FIELDS[0]), r(UNIT_VALUE_FIELDS[1]))}
        parts |= {"hs6": hs6, "hs4": hs4, "country_of_origin": r("country_of_origin")}
        band, basis = None, "none"
        for level, keys in BAND_LEVELS:
            key = py_key([parts[k] for k in keys])
            if key is not None and key in look["bands"][level]:
                band, basis = look["bands"][level][key], level
                break
        med, mad, median_uv = band if band else (None, None, None)
        f["unit_value"] = uv
        f["reference_unit_value"] = median_uv
        f["reference_basis"] = basis
        f["unit_value_ratio"] = uv / median_uv if uv is not None and median_uv is not None else None
        f["unit_value_band_z"] = (
            (math.log(uv) - med) / (1.4826 * max(mad, float(cfg["min_mad"])))
            if uv is not None and uv > 0 and med is not None and mad is not None
            else None
        )
    hist = look["history"]
    if kind == "declaration":
        values = {**record, "hs6": hs6, "hs4": hs4, "hs_chapter": f["hs_chapter"]}
        for g in history_groups():
            key = py_key([values.get(c) for c in g["keys"]])
            row = hist.get(g["group"], {}).get(key) if key is not None else None
            for stat, name in g["outputs"].items():
                if stat == "first_time":
                    f[name] = None if key is None else (row is None or row["declarations"] == 0)
                elif stat == "hit_rate":
                    f[name] = row["hit_rate"] if row else ref.prior
                elif stat == "critical_rate":
                    f[name] = row["critical_rate"] if row else ref.prior_critical
                else:  # declarations, declarations_365d, inspections: counts
                    f[name] = row[stat] if row else 0.0
        origin, dispatch = py_text(r("country_of_origin")), py_text(r("country_of_dispatch"))
        differs = origin is not None and dispatch is not None and origin != dispatch
        f["origin_differs_dispatch"] = differs
        f["route_transhipment"] = differs and dispatch in cfg["transhipment_hubs"]
        status = look["parties"].get(py_text(r("importer_id")))
        f["aeo"] = status is not None
        f["aeo_partner_mra"] = status is not None and status.startswith(cfg["aeo_mra_prefix"])
    elif kind in ("consignment", "road_cargo_info"):
        hrow = hist.get("hs", {}).get(hs6) if hs6 is not None else None
        origin = py_text(r(ORIGIN_COLUMN[kind]))
        orow = hist.get("origin", {}).get(origin) if origin is not None else None
        f["hs_risk"] = hrow["hit_rate"] if hrow else ref.prior
        f["origin_risk"] = orow["hit_rate"] if orow else ref.prior
        if kind == "consignment":
            rec, load = py_text(r("receipt_location")), py_text(r("loading_location"))
            f["route_transhipment"] = rec is not None and load is not None and rec[:2] != load[:2]
    elif kind == "currency_declaration":
        amount = py_number(r("amount_national"))
        ratio = amount / float(ref.national.cash_threshold) if amount is not None else None
        f["threshold_ratio"] = ratio
        f["just_below_threshold"] = ratio is not None and float(cfg["near_threshold_share"]) <= ratio < 1.0
        doc = py_text(r("document_number"))
        crow = hist.get(CASH_GROUP, {}).get(doc) if doc is not None else None
        f["person_movements_90d"] = crow["declarations_365d"] if crow else 0.0
        f["person_near_threshold_90d"] = crow["flagged"] if crow else 0.0
    watch = look["watchlist"]
    f["watchlist_hit"] = any(
        py_upper(r(c)) in watch for c in WATCH_COLUMNS[kind] if py_upper(r(c)) is not None
    )
    unknown = []
    for name, codelist, looked_up in code_checks(kind, ref.known):
        if py_text(r(name)) is None:
            continue
        value = hs6 if looked_up == "hs6" else py_text(r(looked_up))
        if value is None or value not in ref.known[codelist]:
            unknown.append(name)
    f["unknown_codes"] = ",".join(unknown)
    f["unknown_code_count"] = float(len(unknown))
    for name in _feature_names(kind):
        out[name] = f[name]
    return out
