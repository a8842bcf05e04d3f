"""People crossing: passenger information (API-style records) and currency/BNI declarations.

Planted: frequent couriers (a few travellers cross many times more often than anyone else),
watch-listed persons travelling, and cash structuring (repeated amounts just below the HKD 120,000
declaration threshold, often by several people of one ring on the same day).
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np

from sciti.demo.entities import World
from sciti.demo.rng import stream
from sciti.demo.variants import person_forms
from sciti.demo.writers import Sinks

# Field names of the currency_declaration record kind, plus record_type (declaration | check).
CBNI_HEADER = [
    "declaration_number",
    "declared_at",
    "control_point",
    "direction",
    "carrier_type",
    "record_type",
    "person_name",
    "nationality",
    "document_type",
    "document_number",
    "instrument_type",
    "amount",
    "currency",
    "amount_national",
    "origin_of_funds",
    "intended_use",
]
WATCHLIST_HEADER = ["list_id", "name", "doc_no", "nationality", "reason", "listed_on"]
LABEL_HEADER = ["feed", "record_key", "sub_key", "pattern", "entity_id", "start", "end", "detail"]
PORTS = ["HKIA", "LMC", "SZB", "HYW", "MKT", "HZMB"]


def _ts(t: np.datetime64) -> str:
    return f"{np.datetime_as_string(t, unit='s')}Z"


def travellers(world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who travels, how often (weights), and who are the planted frequent couriers and structurers."""
    rng = stream(world.seed, "travel.people")
    roles = np.array([p.role for p in world.persons])
    who = np.flatnonzero(roles != "driver")
    frequent = who[rng.random(len(who)) < world.scale.rates["frequent_courier_share"]]
    weights = np.ones(len(world.persons))
    weights[roles == "driver"] = 0
    weights[roles == "courier"] = 3
    weights[frequent] = 15
    couriers = np.flatnonzero(roles == "courier")
    n_struct = max(
        3,
        min(
            len(couriers),
            int(world.scale.currency_declarations * world.scale.rates["structuring_share"] / 15),
        ),
    )
    structurers = rng.choice(couriers, size=n_struct, replace=False) if len(couriers) else couriers
    return weights / weights.sum(), frequent, structurers


def write_watchlist(world: World, sinks: Sinks) -> None:
    rng = stream(world.seed, "travel.watchlist")
    wl = sinks.rows("intel/watchlist.csv", WATCHLIST_HEADER)
    reasons = [
        "suspected drug trafficking",
        "suspected smuggling syndicate member",
        "wanted for questioning",
        "suspected money laundering",
        "suspected wildlife trafficking",
    ]
    for i, p in enumerate(x for x in world.persons if x.watchlisted):
        forms = person_forms(p, world.data)
        f = forms[int(rng.integers(len(forms)))]
        wl.write(
            {
                "list_id": f"WL{i + 1:05d}",
                "name": f["name"],
                "doc_no": p.doc_no if rng.random() < 0.5 else "",
                "nationality": p.nationality,
                "reason": reasons[int(rng.integers(len(reasons)))],
                "listed_on": str(world.scale.start),
            }
        )


def write_passengers_chunk(
    world: World, chunk: int, first: int, n: int, sinks: Sinks, weights: np.ndarray, frequent: np.ndarray
) -> None:
    sc = world.scale
    rng = stream(world.seed, "passengers", chunk)
    total, days = int(sc.passengers), int(sc.days)
    start = np.datetime64(datetime.combine(sc.start, time()), "s")
    who = rng.choice(len(world.persons), size=n, p=weights)
    port = rng.choice(PORTS, size=n, p=[0.35, 0.2, 0.2, 0.1, 0.05, 0.1])
    out = sinks.jsonl("passengers/api_records.jsonl")
    labels = sinks.rows("ground_truth/labels.csv", LABEL_HEADER)
    freq = set(frequent.tolist())
    for j in range(n):
        g = first + j
        p = world.persons[int(who[j])]
        t = start + np.timedelta64(
            int(g / total * days) * 86400 + int(rng.integers(6 * 3600, 24 * 3600)), "s"
        )
        doc = person_forms(p, world.data)[0]["name"].split(" ", 1)
        flight = world.flights[int(rng.integers(len(world.flights)))] if port[j] == "HKIA" else ""
        rid = f"API26{g + 1:010d}"
        direction = "arrival" if rng.random() < 0.5 else "departure"
        serial = int(p.entity_id[1:])  # a stable birthday for the person
        here, there = ("HKHKG", str(rng.choice(["CNSZX", "CNCAN", "JPTYO", "SGSIN", "RUVVO"])))
        out.write(
            {
                "record_ref": rid,
                "data_type": "API",
                "voyage_id": f"{flight}/{str(t)[:10]}" if flight else f"{port[j]}/{str(t)[:10]}",
                "carrier_code": flight[:2],
                "departure_date": str(t)[:10],
                "departure_at": _ts(t),
                "departure_port": here if direction == "departure" else there,
                "arrival_port": there if direction == "departure" else here,
                "control_point": str(port[j]),
                "surname": doc[0],
                "given_names": doc[1] if len(doc) > 1 else "",
                "date_of_birth": f"{p.birth_year}-{1 + serial % 12:02d}-{1 + serial % 28:02d}",
                "nationality": p.nationality,
                "document_type": "ID" if p.nationality == "HK" else ("HRP" if p.nationality == "CN" else "P"),
                "document_number": p.doc_no,
            }
        )
        if p.watchlisted:
            labels.write(
                {
                    "feed": "passengers",
                    "record_key": rid,
                    "pattern": "watchlist",
                    "entity_id": p.entity_id,
                    "start": _ts(t),
                    "end": _ts(t),
                    "detail": "watch-listed person travelling",
                }
            )
        if int(who[j]) in freq:
            labels.write(
                {
                    "feed": "passengers",
                    "record_key": rid,
                    "pattern": "frequent_courier",
                    "entity_id": p.entity_id,
                    "start": _ts(t),
                    "end": _ts(t),
                    "detail": "traveller crossing unusually often",
                }
            )


def write_cbni_chunk(
    world: World, chunk: int, first: int, n: int, sinks: Sinks, structurers: np.ndarray
) -> None:
    sc = world.scale
    rng = stream(world.seed, "cbni", chunk)
    total, days = int(sc.currency_declarations), int(sc.days)
    threshold = float(world.data["cash_threshold_hkd"])
    fx = world.data["fx_to_hkd"]
    start = np.datetime64(datetime.combine(sc.start, time()), "s")
    out = sinks.rows("currency/cbni.csv", CBNI_HEADER)
    labels = sinks.rows("ground_truth/labels.csv", LABEL_HEADER)
    people = np.flatnonzero(np.array([p.role != "driver" for p in world.persons]))
    for j in range(n):
        g = first + j
        t = start + np.timedelta64(
            int(g / total * days) * 86400 + int(rng.integers(7 * 3600, 23 * 3600)), "s"
        )
        structuring = len(structurers) > 0 and rng.random() < sc.rates["structuring_share"]
        p = world.persons[int(rng.choice(structurers if structuring else people))]
        currency = str(rng.choice(["HKD", "USD", "CNY"], p=[0.6, 0.25, 0.15]))
        if structuring:
            hkd = rng.uniform(0.85, 0.999) * threshold
            kind = "check"
        elif rng.random() < 0.7:
            hkd = threshold * (1 + rng.lognormal(0.3, 0.9))
            kind = "declaration"
        else:
            hkd = rng.uniform(0.05, 0.95) * threshold
            kind = "check"
        amount = round(hkd / fx[currency], -2 if currency != "USD" else -1)
        amount_hkd = (
            min(round(amount * fx[currency], 2), threshold - 1)
            if structuring
            else round(amount * fx[currency], 2)
        )
        if structuring:
            amount = round(amount_hkd / fx[currency], 2)
        name = person_forms(p, world.data)[int(rng.integers(0, 2))]["name"]
        cid = f"CB26{g + 1:08d}"
        out.write(
            {
                "declaration_number": cid,
                "declared_at": _ts(t),
                "control_point": str(rng.choice(PORTS)),
                "direction": "OUT" if rng.random() < 0.5 else "IN",
                "carrier_type": "person",
                "record_type": kind,
                "person_name": name,
                "nationality": p.nationality,
                "document_type": "ID" if p.nationality == "HK" else ("HRP" if p.nationality == "CN" else "P"),
                "document_number": p.doc_no,
                "instrument_type": "cash" if rng.random() < 0.9 else "cheque",
                "amount": f"{amount:.2f}",
                "currency": currency,
                "amount_national": f"{amount_hkd:.2f}",
                "origin_of_funds": str(
                    rng.choice(["savings", "business income", "loan", "sale of property"])
                ),
                "intended_use": str(rng.choice(["business", "personal", "investment", "family support"])),
            }
        )
        if structuring:
            labels.write(
                {
                    "feed": "currency",
                    "record_key": cid,
                    "pattern": "cash_structuring",
                    "entity_id": p.entity_id,
                    "start": _ts(t),
                    "end": _ts(t),
                    "detail": f"HKD {amount_hkd:.2f} just below the threshold",
                }
            )
