"""Land-boundary feeds: road-cargo advance information, vehicle crossings, and e-lock trips.

A truck files road-cargo information before it crosses (JSON, one document per line); the control
point records the crossing (CSV); trucks under the e-lock scheme carry a lock that reports GPS
fixes and seal events over the mobile network (JSON messages as an MQTT broker would carry them,
topic ``elock/<elock_id>/<kind>``). Planted: route deviations, unscheduled stops, tampering.
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np

from sciti.demo.catalogue import Goods
from sciti.demo.entities import Company, World
from sciti.demo.rng import stream
from sciti.demo.variants import company_forms, person_forms
from sciti.demo.writers import Sinks

# Field names of the conveyance_crossing kind (plus the Guangdong plate a cross-boundary truck
# carries beside its Hong Kong one).
CROSSING_HEADER = [
    "crossing_id",
    "control_point",
    "direction",
    "crossed_at",
    "lane",
    "mode_of_transport",
    "conveyance_type",
    "conveyance_id",
    "mainland_plate",
    "container_id",
    "elock_id",
    "driver_name",
    "driver_document_number",
    "road_cargo_reference",
]
FIX_SECONDS = 120
KM_PER_DEG = 111.0


def _ts(t: np.datetime64) -> str:
    # datetime.isoformat is several times faster than np.datetime_as_string on scalars.
    return f"{t.astype(datetime).isoformat()}Z"


def _path(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative distance (km) along a polyline of (lat, lon) points."""
    d = np.diff(points, axis=0) * np.array([KM_PER_DEG, KM_PER_DEG * np.cos(np.radians(22.4))])
    return points, np.concatenate([[0.0], np.cumsum(np.hypot(d[:, 0], d[:, 1]))])


def trip_messages(
    rng: np.random.Generator, trip: dict, route: dict, depart: np.datetime64, anomaly: str
) -> tuple[list[dict], tuple[np.datetime64, np.datetime64] | None]:
    """GPS fixes and lock events of one trip; returns the messages and the anomaly's time span."""
    pts = np.array(route["waypoints"], dtype=float)
    if anomaly == "elock_deviation":  # a detour point 2-5 km off the corridor mid-route
        j = int(rng.integers(1, len(pts) - 1))
        mid = (pts[j - 1] + pts[j]) / 2 + rng.choice([-1, 1], 2) * rng.uniform(0.02, 0.045, 2)
        pts = np.insert(pts, j, mid, axis=0)
    pts, cum = _path(pts)
    speed = rng.uniform(35, 55)
    n_fix = max(3, int(cum[-1] / speed * 3600 / FIX_SECONDS) + 1)
    dist = np.linspace(0, cum[-1], n_fix)
    times = np.arange(n_fix) * FIX_SECONDS
    span = None
    if anomaly == "elock_stop":  # 20-90 minutes standing still somewhere along the route
        at = int(rng.integers(2, n_fix - 1))
        hold = int(rng.integers(10, 46))
        dist = np.concatenate([dist[:at], np.full(hold, dist[at]), dist[at:]])
        times = np.arange(len(dist)) * FIX_SECONDS
        span = (
            depart + np.timedelta64(int(times[at]), "s"),
            depart + np.timedelta64(int(times[at + hold]), "s"),
        )
    if anomaly == "elock_deviation":
        span = (depart + np.timedelta64(int(times[0]), "s"), depart + np.timedelta64(int(times[-1]), "s"))
    lat, lon = np.interp(dist, cum, pts[:, 0]), np.interp(dist, cum, pts[:, 1])
    stamps = np.char.add(np.datetime_as_string(depart + times.astype("timedelta64[s]"), unit="s"), "Z")
    lat += rng.normal(0, 0.0001, len(lat))
    lon += rng.normal(0, 0.0001, len(lon))
    step = np.diff(dist, prepend=dist[0])
    battery = np.round(np.linspace(rng.uniform(70, 100), rng.uniform(40, 70), len(dist)))
    eid, tid = trip["elock_id"], trip["trip_id"]
    msgs = []

    def event(kind: str, i: int) -> dict:
        return {
            "topic": f"elock/{eid}/event",
            "elock_id": eid,
            "trip_id": tid,
            "ts": str(stamps[i]),
            "kind": "event",
            "event": kind,
            "lat": round(float(lat[i]), 5),
            "lon": round(float(lon[i]), 5),
            "vehicle_plate": trip["plate"],
        }

    msgs.append(event("sealed", 0))
    tamper_at = int(rng.integers(2, len(dist) - 1)) if anomaly == "elock_tamper" else -1
    for i in range(len(dist)):
        msgs.append(
            {
                "topic": f"elock/{eid}/gps",
                "elock_id": eid,
                "trip_id": tid,
                "ts": str(stamps[i]),
                "kind": "gps",
                "lat": round(float(lat[i]), 5),
                "lon": round(float(lon[i]), 5),
                "speed_kmh": round(float(step[i] / FIX_SECONDS * 3600), 1),
                "battery_pct": int(battery[i]),
            }
        )
        if i == tamper_at:
            msgs.append(event("tamper_alert", i))
            t = depart + np.timedelta64(int(times[i]), "s")
            span = (t, t)
    msgs.append(event("unsealed", len(dist) - 1))
    return msgs, span


def write_road_chunk(world: World, goods: Goods, chunk: int, first: int, n: int, sinks: Sinks) -> None:
    """Road-cargo records ``first .. first+n-1``, their crossings and (for e-lock trucks) trips."""
    sc, data = world.scale, world.data
    rng = stream(world.seed, "road", chunk)
    rates = sc.rates
    total, days = int(sc.road_cargo), int(sc.days)
    drivers = world.persons_with_role("driver")
    cn = np.array([i for i in world.foreign_idx if world.companies[i].country == "CN"], dtype=np.int64)
    routes = data["routes"]
    points = data["control_points"]
    elock_share = min(1.0, int(sc.elock_trips) / max(1, total))
    start = np.datetime64(datetime.combine(sc.start, time()), "s")
    rocars = sinks.jsonl("road/road_cargo.jsonl")
    crossings = sinks.rows("road/crossings.csv", CROSSING_HEADER)
    elock = sinks.jsonl("elock/messages.jsonl")
    labels = sinks.rows(
        "ground_truth/labels.csv",
        ["feed", "record_key", "sub_key", "pattern", "entity_id", "start", "end", "detail"],
    )
    chunk_msgs: list[dict] = []
    land_points = [k for k, v in points.items() if v["kind"] == "land"]
    cache: dict[str, list[dict[str, str]]] = {}

    def forms_of(company: Company) -> list[dict[str, str]]:
        if company.entity_id not in cache:
            cache[company.entity_id] = company_forms(company, data)
        return cache[company.entity_id]

    # Draw the per-record choices as arrays: one numpy call per column, not per record.
    secs = rng.integers(5 * 3600, 23 * 3600, n)
    veh_i = rng.integers(0, len(world.vehicles), n)
    driver_i = rng.choice(drivers, size=n)
    shipper_i = rng.choice(cn, size=n)
    consignee_i = rng.choice(world.hk_idx, size=n)
    for j in range(n):
        g = first + j
        day = int(g / total * days)
        t = start + np.timedelta64(day * 86400 + int(secs[j]), "s")
        veh = world.vehicles[int(veh_i[j])]
        driver = world.persons[int(driver_i[j])]
        if driver.entity_id not in cache:
            cache[driver.entity_id] = person_forms(driver, data)
        dforms = cache[driver.entity_id]
        with_lock = rng.random() < elock_share
        route = routes[int(rng.integers(len(routes)))]
        cp = route["via"][0] if with_lock else str(rng.choice(land_points))
        inbound = with_lock or rng.random() < 0.6
        shipper = world.companies[int(shipper_i[j])]
        consignee = world.companies[int(consignee_i[j])]
        sf, cf = forms_of(shipper), forms_of(consignee)
        s_form = sf[3] if rng.random() < 0.5 else sf[0]  # Mainland shippers often file in Chinese
        c_form = cf[int(rng.integers(len(cf)))]
        container = world.containers[int(rng.integers(len(world.containers)))] if rng.random() < 0.7 else ""
        rid = f"RCA26{g + 1:09d}"
        elock_id = world.elocks[int(rng.integers(len(world.elocks)))] if with_lock else ""
        consignments = []
        for c in range(int(rng.integers(1, 4))):
            gi = int(rng.integers(len(goods)))
            consignments.append(
                {
                    "seq": c + 1,
                    "consignor_name": s_form["name"],
                    "consignor_address": s_form["street"],
                    "consignor_country": shipper.country,
                    "consignee_name": c_form["name"],
                    "consignee_address": c_form["street"],
                    "consignee_country": consignee.country,
                    "goods_description": str(goods.desc[gi]),
                    "hs_code": f"{goods.hs[gi]}00",
                    "packages": int(rng.integers(1, 200)),
                    "gross_mass_kg": round(float(rng.uniform(50, 9000)), 1),
                }
            )
        # Field names of the road_cargo_info kind; consignments nest (one record may carry several).
        rocars.write(
            {
                "reference": rid,
                "version": 1,
                "function_code": "9",
                "submitted_at": _ts(t - np.timedelta64(int(rng.integers(1800, 86400)), "s")),
                "vehicle_plate": veh["plate"],
                "mainland_plate": veh["mainland_plate"],
                "driver_name": dforms[int(rng.integers(0, 2))]["name"],
                "driver_document_number": driver.doc_no,
                "container_id": container,
                "elock_id": elock_id,
                "entry_control_point" if inbound else "exit_control_point": cp,
                "planned_arrival_at": _ts(t),
                "consignments": consignments,
            }
        )
        crossed = t + np.timedelta64(int(rng.integers(0, 3600)), "s")
        crossings.write(
            {
                "crossing_id": f"X{rid[3:]}",
                "control_point": cp,
                "direction": "IN" if inbound else "OUT",
                "crossed_at": _ts(crossed),
                "lane": int(rng.integers(1, 13)),
                "mode_of_transport": "3",
                "conveyance_type": "truck",
                "conveyance_id": veh["plate"],
                "mainland_plate": veh["mainland_plate"],
                "container_id": container,
                "elock_id": elock_id,
                "driver_name": dforms[0]["name"],
                "driver_document_number": driver.doc_no,
                "road_cargo_reference": rid,
            }
        )
        if with_lock:
            u = rng.random()
            cut = np.cumsum([rates["elock_deviation"], rates["elock_stop"], rates["elock_tamper"]])
            anomaly = ["elock_deviation", "elock_stop", "elock_tamper", ""][
                int(np.searchsorted(cut, u, side="right"))
            ]
            trip = {"elock_id": elock_id, "trip_id": f"T{rid[3:]}", "plate": veh["plate"]}
            msgs, span = trip_messages(rng, trip, route, t - np.timedelta64(3600, "s"), anomaly)
            chunk_msgs += msgs
            sinks.count("elock.trips", 1)
            if anomaly and span:
                labels.write(
                    {
                        "feed": "elock",
                        "record_key": trip["trip_id"],
                        "sub_key": elock_id,
                        "pattern": anomaly,
                        "entity_id": veh["vehicle_id"],
                        "start": _ts(span[0]),
                        "end": _ts(span[1]),
                        "detail": f"route {route['from']} -> {route['to']} via {cp}",
                    }
                )
    chunk_msgs.sort(key=lambda m: (m["ts"], m["trip_id"]))
    for i, m in enumerate(chunk_msgs):
        elock.write({"msg_id": f"M{chunk:05d}{i:07d}", **m})
