"""Planted patterns are present at their configured rates and look the way the docs say."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from sciti.demo import PATTERNS, generate, load_scale
from tests.demo.conftest import read_csv, read_jsonl


def within(observed: int, expected: float) -> bool:
    """Binomial-ish tolerance: four standard deviations, plus one for tiny counts."""
    return abs(observed - expected) <= 4 * math.sqrt(max(expected, 1.0)) + 1


@pytest.fixture(scope="module")
def decl_world(tmp_path_factory):
    """A declarations-only world large enough for rate checks (still seconds)."""
    sc = load_scale("tiny", {"declarations": 12000, "chunk_size": 4000})
    return generate(tmp_path_factory.mktemp("decl_world"), sc, 11, feeds={"declarations"}), sc


@pytest.mark.parametrize("pattern", PATTERNS)
def test_declaration_patterns_at_configured_rates(decl_world, pattern: str) -> None:
    report, sc = decl_world
    labels = [r for r in read_csv(report.out / "ground_truth/labels.csv") if r["feed"] == "declarations"]
    truth = read_csv(report.out / "ground_truth/declarations.csv")
    observed = sum(1 for r in labels if r["pattern"] == pattern)
    total_items = _all_items(report)
    assert within(observed, sc.rates[pattern] * total_items), (
        pattern,
        observed,
        sc.rates[pattern] * total_items,
    )
    assert len(truth) == sc.declarations


def _all_items(report) -> int:
    csv_items = report.counts["declarations/csv/declaration_items.csv"]
    xml_items = 0
    for f in (report.out / "declarations/xml").iterdir():
        xml_items += f.read_text(encoding="utf-8").count("<GovernmentAgencyGoodsItem>")
    return csv_items + xml_items


def test_undervalued_items_are_priced_far_below_reference(decl_world) -> None:
    report, _ = decl_world
    labels = {
        (r["record_key"], r["sub_key"])
        for r in read_csv(report.out / "ground_truth/labels.csv")
        if r["pattern"] == "undervaluation"
    }
    prices = {
        r["hs_code"]: float(r["reference_unit_price_usd"])
        for r in read_csv(report.out / "reference/unit_prices.csv")
    }
    ratios = {True: [], False: []}
    for r in read_csv(report.out / "declarations/csv/declaration_items.csv"):
        unit_usd = float(r["customs_value"]) / 7.8 / float(r["quantity"])
        if r["hs_code"] in prices:
            ratios[(r["declaration_id"], r["item_number"]) in labels].append(unit_usd / prices[r["hs_code"]])
    planted, honest = sorted(ratios[True]), sorted(ratios[False])
    assert planted and planted[int(0.9 * len(planted))] < 0.6  # 20-50 % of a price spread +-15 %
    assert honest[int(0.1 * len(honest))] > 0.7


def test_front_companies_share_address_phone_or_director(tiny_world) -> None:
    groups = defaultdict(list)
    for r in read_csv(tiny_world.out / "ground_truth/front_groups.csv"):
        groups[r["group_id"]].append(r)
    assert len(groups) >= 3
    companies = {r["entity_id"]: r for r in read_csv(tiny_world.out / "ground_truth/companies.csv")}
    forms = defaultdict(list)
    for r in read_csv(tiny_world.out / "ground_truth/entity_forms.csv"):
        forms[r["entity_id"]].append(r)
    for members in groups.values():
        shares = set(members[1]["shares"].split(";"))  # members[0] is the anchor the others copy
        assert len(shares) >= 2
        ids = [m["entity_id"] for m in members]
        if "phone" in shares:
            assert len({forms[i][0]["phone"] for i in ids}) == 1
        if "address" in shares:
            assert len({forms[i][0]["street"] for i in ids}) == 1
        if "director" in shares:
            assert len({companies[i]["directors"].split(";")[0] for i in ids}) == 1


def _corridor_distance_km(lat: float, lon: float, waypoints: list[list[float]]) -> float:
    kx = 111.0 * math.cos(math.radians(22.4))
    best = float("inf")
    for (a_lat, a_lon), (b_lat, b_lon) in zip(waypoints, waypoints[1:]):
        ax, ay, bx, by, px, py = a_lon * kx, a_lat * 111, b_lon * kx, b_lat * 111, lon * kx, lat * 111
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, math.hypot(px - ax - t * dx, py - ay - t * dy))
    return best


def test_elock_anomalies_show_in_the_messages(tiny_world) -> None:
    import json

    routes = json.loads((tiny_world.out / "reference/elock_routes.json").read_text())["routes"]
    labels = {
        r["record_key"]: r["pattern"]
        for r in read_csv(tiny_world.out / "ground_truth/labels.csv")
        if r["feed"] == "elock"
    }
    trips = defaultdict(list)
    for m in read_jsonl(tiny_world.out / "elock/messages.jsonl"):
        trips[m["trip_id"]].append(m)
    assert labels and set(labels) <= set(trips)
    for trip_id, msgs in trips.items():
        gps = [m for m in msgs if m["kind"] == "gps"]
        start = (gps[0]["lat"], gps[0]["lon"])
        route = min(routes, key=lambda r: math.dist(start, tuple(r["waypoints"][0])))
        off = max(_corridor_distance_km(m["lat"], m["lon"], route["waypoints"]) for m in gps)
        events = Counter(m["event"] for m in msgs if m["kind"] == "event")
        longest_still, run = 0, 0
        for m in gps[1:]:
            run = run + 1 if m["speed_kmh"] == 0 else 0
            longest_still = max(longest_still, run)
        pattern = labels.get(trip_id, "")
        assert (off > 1.0) == (pattern == "elock_deviation"), (trip_id, off, pattern)
        assert (longest_still >= 9) == (pattern == "elock_stop"), (trip_id, longest_still, pattern)
        assert (events["tamper_alert"] > 0) == (pattern == "elock_tamper")
        assert events["sealed"] == events["unsealed"] == 1


def test_cash_structuring_sits_just_below_the_threshold(tiny_world) -> None:
    labelled = {
        r["record_key"]
        for r in read_csv(tiny_world.out / "ground_truth/labels.csv")
        if r["pattern"] == "cash_structuring"
    }
    rows = read_csv(tiny_world.out / "currency/cbni.csv")
    sc = load_scale("tiny")
    assert within(len(labelled), sc.rates["structuring_share"] * len(rows))
    for r in rows:
        if r["declaration_number"] in labelled:
            assert 0.85 * 120000 <= float(r["amount_national"]) < 120000


def test_frequent_couriers_travel_far_more_often(tiny_world) -> None:
    persons = read_csv(tiny_world.out / "ground_truth/persons.csv")
    frequent = {p["doc_no"] for p in persons if p["frequent_courier"] == "true"}
    trips = Counter(r["document_number"] for r in read_jsonl(tiny_world.out / "passengers/api_records.jsonl"))
    assert frequent
    others = [n for d, n in trips.items() if d not in frequent]
    freq = [trips[d] for d in frequent]
    assert sum(freq) / len(freq) > 5 * sum(others) / len(others)


def test_watchlisted_travellers_are_labelled(tiny_world) -> None:
    listed = {
        p["doc_no"]
        for p in read_csv(tiny_world.out / "ground_truth/persons.csv")
        if p["watchlisted"] == "true"
    }
    labelled = {
        r["record_key"]
        for r in read_csv(tiny_world.out / "ground_truth/labels.csv")
        if r["pattern"] == "watchlist"
    }
    travelling = {
        r["record_ref"]
        for r in read_jsonl(tiny_world.out / "passengers/api_records.jsonl")
        if r["document_number"] in listed
    }
    assert listed and labelled == travelling
    assert len(read_csv(tiny_world.out / "intel/watchlist.csv")) == len(listed)


def test_security_incidents_are_in_the_logs(tiny_world) -> None:
    labels = read_csv(tiny_world.out / "ground_truth/labels.csv")
    auth = list(read_jsonl(tiny_world.out / "seclogs/auth.jsonl"))
    for lab in (r for r in labels if r["pattern"] == "bruteforce"):
        ip = lab["entity_id"]
        failures = [
            a
            for a in auth
            if a["src_ip"] == ip and a["result"] == "failure" and lab["start"] <= a["ts"] <= lab["end"]
        ]
        assert len(failures) >= 39
    off = [r for r in labels if r["pattern"] == "offhours_login"]
    for lab in off:
        local = datetime.fromisoformat(lab["start"].replace("Z", "+00:00")) + timedelta(hours=8)
        assert 1 <= local.hour < 5


def test_inspections_are_mostly_risk_based_with_a_random_share(decl_world) -> None:
    report, sc = decl_world
    truth = {r["declaration_id"]: r for r in read_csv(report.out / "ground_truth/declarations.csv")}
    insp = read_csv(report.out / "inspections/inspections.csv")
    by = Counter(r["selection_reason"] for r in insp)
    assert by["risk"] > by["random"] > 0
    assert within(by["random"], sc.rates["random_inspection"] * sc.declarations)
    fraud_rate = {
        s: sum(truth[r["declaration_id"]]["fraud"] == "true" for r in insp if r["selection_reason"] == s)
        / by[s]
        for s in by
    }
    assert fraud_rate["risk"] > 2 * fraud_rate["random"]  # labels from risk selection are biased
    for r in insp:
        if r["outcome"] in ("discrepancy", "seizure"):
            assert truth[r["declaration_id"]]["fraud"] == "true"
