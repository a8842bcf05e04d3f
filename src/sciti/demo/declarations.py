"""Goods declarations, generated a chunk at a time with numpy, with planted fraud patterns.

A chunk holds the declarations of one slice of the period (chunks are chronological), their goods
items and the forms their parties are written in. Writers (CSV export, WCO DEC XML, CUSCAR) and the
enforcement feeds (inspections, seizures) all read the same chunk, so the feeds agree with each
other and with the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import numpy as np

from sciti.demo.catalogue import Goods, PartyForms
from sciti.demo.entities import World
from sciti.demo.rng import stream

PATTERNS = ("undervaluation", "misclassification", "transhipment", "prohibited", "counterfeit")
MODES = {"sea": "1", "air": "4", "road": "3"}
LAND_POINTS = ["LMC", "SZB", "HYW", "MKT", "HZMB"]
CURRENCY_OF = {
    "CN": "CNY",
    "JP": "JPY",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "GB": "GBP",
    "SG": "SGD",
    "KR": "KRW",
    "RU": "RUB",
    "HK": "HKD",
}
PACKAGE_TYPES = np.array(["CT", "BX", "PK", "PX", "BG", "CS"])
# How far below the reference price an undervalued item is declared (share of the true price).
UNDERVALUE_RANGE = (0.2, 0.5)


@dataclass
class DeclChunk:
    index: int
    h: dict[str, np.ndarray]  # one entry per declaration
    it: dict[str, np.ndarray]  # one entry per goods item
    forms: dict[str, np.ndarray]  # flattened company-form index per declaration, by role
    # Columns several writers derive the same way (decl_feeds.derived, party_ids), computed once.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.h["declaration_id"])


def _strs(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


def _origins(rng: np.random.Generator, goods: Goods, gidx: np.ndarray) -> np.ndarray:
    out = np.empty(len(gidx), dtype="<U2")
    for g in np.unique(gidx):
        sel = np.flatnonzero(gidx == g)
        countries, p = goods.origins[g]
        out[sel] = rng.choice(countries, size=len(sel), p=p)
    return out


def _pattern_probs(rates: dict[str, float], front_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pattern probabilities for front-company and other items, keeping the overall rates."""
    base = np.array([rates[p] for p in PATTERNS])
    front = base / base.sum() * rates["front_company_fraud"]
    other = np.clip((base - front_share * front) / max(1e-9, 1 - front_share), 0, None)
    return front, other


def _lookups(world: World, goods: Goods) -> dict[str, Any]:
    """Arrays every chunk indexes into, built once per world and process."""
    d = world.derived
    if "decl" not in d:
        pop, hk, foreign = world.popularity, world.hk_idx, world.foreign_idx
        country = np.array([c.country for c in world.companies])
        cn = foreign[country[foreign] == "CN"]
        ports = world.data["ports"]
        plates = np.array([v["plate"] for v in world.vehicles], dtype=object)
        d["decl"] = {
            "cn": cn,
            "p_hk": pop[hk] / pop[hk].sum(),
            "p_fx": pop[foreign] / pop[foreign].sum(),
            "p_cn": pop[cn] / pop[cn].sum(),
            "country": country,
            "front_of": np.array([c.front_group for c in world.companies]),
            "loading": {c: ports.get(c, ports["CN"])[0] for c in np.unique(country).tolist()},
            "vessel_imo": np.array([v["imo"] for v in world.vessels], dtype=object),
            "vessel_flag": np.array([v["flag"] for v in world.vessels], dtype=object),
            "flights": np.array(world.flights, dtype=object),
            "plates": plates,
            "plate_nat": np.where([p.startswith("粵") for p in plates], "CN", "HK").astype(object),
            "containers": np.array(world.containers, dtype=object),
            "auth": {c.authorised_brand: i for i, c in enumerate(world.companies) if c.authorised_brand},
            "duty_of": dict(zip(goods.hs.tolist(), goods.duty.tolist(), strict=True)),
        }
    return d["decl"]


def _duty(duty_of: dict[str, float], codes: np.ndarray) -> np.ndarray:
    """Duty rate per HS code, looked up once per distinct code."""
    uniq, inv = np.unique(codes, return_inverse=True)
    return np.array([duty_of.get(c, 0.0) for c in uniq.tolist()], dtype=float)[inv]


def make_chunk(world: World, goods: Goods, forms: PartyForms, chunk: int, first: int, n: int) -> DeclChunk:
    """Declarations ``first .. first+n-1`` of the world (chunk number ``chunk``)."""
    sc, data = world.scale, world.data
    rng = stream(world.seed, "declarations", chunk)
    total, days = int(sc.declarations), int(sc.days)
    g = first + np.arange(n)
    h: dict[str, Any] = {"declaration_id": _strs("HKD26", g + 1, 9)}
    is_ex = rng.random(n) < sc.export_share
    h["declaration_type"] = np.where(is_ex, "EX", "IM")
    shares = sc.mode_shares
    mode = rng.choice(list(shares), size=n, p=np.array(list(shares.values())) / sum(shares.values()))
    h["mode"] = mode
    h["mode_of_transport"] = np.vectorize(MODES.get, otypes=[str])(mode)
    office = np.where(mode == "sea", "KTCT", np.where(mode == "air", "HKIA", "LMC"))
    land = mode == "road"
    office[land] = rng.choice(LAND_POINTS, size=int(land.sum()), p=[0.35, 0.25, 0.15, 0.1, 0.15])
    h["office_code"] = office
    # Chronological: declaration g falls on day g/total*days, during (mostly) office hours.
    day = np.floor(g / total * days).astype(np.int64)
    secs = (7 * 3600 + rng.beta(2.2, 2.0, n) * 14 * 3600).astype(np.int64)
    start = np.datetime64(datetime.combine(sc.start, time()), "s")
    h["issue"] = start + (day * 86400 + secs).astype("timedelta64[s]")
    h["day"] = day

    lk = _lookups(world, goods)
    hk, foreign, cn = world.hk_idx, world.foreign_idx, lk["cn"]
    p_hk, p_fx, p_cn = lk["p_hk"], lk["p_fx"], lk["p_cn"]
    local = rng.choice(hk, size=n, p=p_hk)
    abroad = np.where(land, rng.choice(cn, size=n, p=p_cn), rng.choice(foreign, size=n, p=p_fx))
    h["importer"] = np.where(is_ex, abroad, local)
    h["exporter"] = np.where(is_ex, local, abroad)
    h["declarant"] = rng.choice(world.broker_idx, size=n)
    country, front_of = lk["country"], lk["front_of"]
    h["front"] = front_of[local] >= 0
    partner_cc = country[abroad]
    h["country_of_dispatch"] = np.where(is_ex, "HK", partner_cc)
    h["country_of_destination"] = np.where(is_ex, partner_cc, "HK")
    loading = np.vectorize(lk["loading"].get, otypes=[str])(partner_cc)
    h["loading_location"] = np.where(is_ex, "HKHKG", loading)
    h["invoice_currency"] = np.where(
        is_ex, "USD", np.vectorize(lambda c: CURRENCY_OF.get(c, "USD"), otypes=[str])(partner_cc)
    )
    fx = data["fx_to_hkd"]
    h["exchange_rate"] = np.vectorize(fx.get, otypes=[float])(h["invoice_currency"])
    h["xml"] = rng.random(n) < sc.xml_share

    # Transport means, documents and containers.
    v_i = (day * 3 + rng.integers(0, 3, n)) % len(world.vessels)
    f_i = rng.integers(0, len(world.flights), n)
    r_i = rng.integers(0, len(world.vehicles), n)
    h["vessel"] = np.where(mode == "sea", v_i, -1)
    sea, air = mode == "sea", mode == "air"
    tmid = np.where(sea, lk["vessel_imo"][v_i], np.where(air, lk["flights"][f_i], lk["plates"][r_i]))
    nat = np.where(sea, lk["vessel_flag"][v_i], np.where(air, "HK", lk["plate_nat"][r_i]))
    h["transport_means_id"], h["transport_nationality"] = tmid.astype(str), nat.astype(str)
    serial = g % 10_000_000
    awb = np.char.add(np.char.add("160-", np.char.zfill(serial.astype(str), 7)), (serial % 7).astype(str))
    h["transport_document"] = np.where(
        mode == "sea", _strs("HKBL", g + 1, 10), np.where(mode == "air", awb, _strs("RC", g + 1, 10))
    )
    cont = lk["containers"]
    n_cont = np.where(mode == "sea", 1 + (rng.random(n) < 0.3), np.where(land, rng.random(n) < 0.7, 0))
    c_first = rng.integers(0, len(cont), n)
    c0, c1 = cont[c_first], cont[(c_first + 1) % len(cont)]
    first_cont = np.where(n_cont > 0, c0, "")
    h["containers"] = np.where(n_cont > 1, c0 + "," + c1, first_cont).astype(str)

    # Goods items.
    n_items = np.minimum(rng.geometric(0.45, n), int(sc.max_items))
    h["goods_item_count"] = n_items
    m = int(n_items.sum())
    d_of = np.repeat(np.arange(n), n_items)
    it: dict[str, Any] = {"decl": d_of}
    it["item_number"] = np.arange(m) - np.repeat(np.cumsum(n_items) - n_items, n_items) + 1
    gi = rng.integers(0, len(goods), m)
    front_item = h["front"][d_of]
    p_front, p_other = _pattern_probs(sc.rates, float(front_item.mean()) if m else 0.0)
    u = rng.random(m)
    cut_f, cut_o = np.cumsum(p_front), np.cumsum(p_other)
    pat = np.where(
        front_item, np.searchsorted(cut_f, u, side="right"), np.searchsorted(cut_o, u, side="right")
    )
    pattern = np.where(pat < len(PATTERNS), np.array(PATTERNS + ("",))[np.minimum(pat, len(PATTERNS))], "")
    it["pattern"] = pattern
    # Patterns that need particular goods re-draw them.
    mis = pattern == "misclassification"
    gi[mis] = rng.choice(np.flatnonzero(goods.decoy >= 0), size=int(mis.sum()))
    tra = pattern == "transhipment"
    gi[tra] = rng.choice(goods.tranship, size=int(tra.sum()))
    cf = pattern == "counterfeit"
    gi[cf] = rng.choice(np.flatnonzero(goods.branded), size=int(cf.sum()))
    it["goods"] = gi
    true_origin = _origins(rng, goods, gi)
    true_origin[tra] = "CN"
    true_origin[cf] = "CN"
    declared_origin = true_origin.copy()
    hubs = data["transhipment_hubs"]
    declared_origin[tra] = rng.choice(hubs, size=int(tra.sum()))
    qty = np.maximum(1, np.round(rng.lognormal(np.log(400 / np.sqrt(goods.price[gi])), 0.8)))
    true_unit = goods.price[gi] * rng.lognormal(0, 0.15, m)
    true_hs = goods.hs[gi].astype("<U6")
    desc = goods.desc[gi].astype(object)
    unit = goods.unit[gi].astype("<U3")
    kg = goods.kg[gi].copy()
    declared_unit = true_unit.copy()
    und = pattern == "undervaluation"
    declared_unit[und] = true_unit[und] * rng.uniform(*UNDERVALUE_RANGE, int(und.sum()))
    brands = np.array(world.data["brands"])
    brand = rng.choice(brands, size=m)
    desc[cf] = np.char.add(np.char.add(brand[cf].astype(str), " "), goods.desc[gi[cf]].astype(str))
    declared_unit[cf] = true_unit[cf] * rng.uniform(0.5, 1.0, int(cf.sum()))
    # Genuine branded goods from the brand's authorised importer carry the brand at a brand price.
    # Only in declarations without planted patterns, so no fraud is pinned on the brand's importer.
    clean_decl = np.bincount(d_of, weights=(pattern != "").astype(float), minlength=n) == 0
    genuine = goods.branded[gi] & clean_decl[d_of] & (rng.random(m) < 0.03)
    auth = lk["auth"]
    for k in np.flatnonzero(genuine).tolist():
        b = brand[k]
        desc[k] = f"{b} {desc[k]}"
        true_unit[k] *= 6
        declared_unit[k] = true_unit[k]
        if b in auth and h["declaration_type"][d_of[k]] == "IM":
            h["importer"][d_of[k]] = auth[b]
    h["front"] = front_of[np.where(is_ex, h["exporter"], h["importer"])] >= 0  # importers may have changed
    declared_hs = true_hs.copy()
    declared_hs[mis] = goods.decoy_hs[gi[mis]]
    pro = np.flatnonzero(pattern == "prohibited")
    detail = np.full(m, "", dtype=object)
    for k in pro.tolist():
        p = goods.prohibited[rng.integers(len(goods.prohibited))]
        countries, w = list(p["origins"]), np.array(list(p["origins"].values()), dtype=float)
        true_hs[k], declared_hs[k], desc[k] = p["hs"], p["cover_hs"], p["cover_desc"]
        true_origin[k] = declared_origin[k] = rng.choice(countries, p=w / w.sum())
        unit[k], kg[k] = "KGM", 1.0
        qty[k] = max(20.0, np.round(qty[k] / 10))
        true_unit[k] = float(p["price"])
        declared_unit[k] = float(p["price"]) * 0.02
        detail[k] = f"actual goods: {p['desc']} (HS {p['hs']})"
    for k in np.flatnonzero(und).tolist():
        detail[k] = f"declared unit price {declared_unit[k]:.2f} USD vs true {true_unit[k]:.2f} USD"
    for k in np.flatnonzero(mis).tolist():
        detail[k] = f"declared HS {declared_hs[k]} for goods of HS {true_hs[k]}"
    for k in np.flatnonzero(tra).tolist():
        detail[k] = f"origin declared {declared_origin[k]}, true origin CN via transhipment"
    for k in np.flatnonzero(cf).tolist():
        detail[k] = f"counterfeit {brand[k]} goods"
    it["detail"] = detail
    it["true_hs"], it["declared_hs"] = true_hs, declared_hs
    it["hs_code"] = np.char.add(declared_hs, "00")
    it["description"] = desc.astype(str)
    it["true_origin"], it["country_of_origin"] = true_origin, declared_origin
    it["quantity"], it["quantity_unit"] = qty, unit
    it["net_mass_kg"] = np.round(qty * kg, 3)
    it["gross_mass_kg"] = np.round(it["net_mass_kg"] * rng.uniform(1.03, 1.2, m), 3)
    it["packages"] = np.maximum(1, np.round(it["gross_mass_kg"] / rng.uniform(5, 25, m))).astype(np.int64)
    it["package_type"] = PACKAGE_TYPES[rng.integers(0, len(PACKAGE_TYPES), m)]
    usd = fx["USD"]
    rate = h["exchange_rate"][d_of]
    it["currency"] = h["invoice_currency"][d_of]
    it["item_price"] = np.round(qty * declared_unit * usd / rate, 2)
    it["customs_value"] = np.round(qty * declared_unit * usd, 2)
    it["true_value"] = np.round(qty * true_unit * usd, 2)
    it["duty_rate"] = _duty(lk["duty_of"], declared_hs)
    true_rate = _duty(lk["duty_of"], true_hs)
    true_rate[pattern == "prohibited"] = 0.0
    it["duty_amount"] = np.round(it["customs_value"] * it["duty_rate"] / 100, 2)
    it["true_duty"] = np.round(it["true_value"] * true_rate / 100, 2)
    it["container_id"] = first_cont.astype(str)[d_of]

    # Header totals from the items.
    def per_decl(x: np.ndarray) -> np.ndarray:
        return np.bincount(d_of, weights=x, minlength=n)

    h["invoice_amount"] = np.round(per_decl(it["item_price"]), 2)
    h["customs_value"] = np.round(per_decl(it["customs_value"]), 2)
    h["duty_tax_total"] = np.round(per_decl(it["duty_amount"]), 2)
    h["true_duty"] = np.round(per_decl(it["true_duty"]), 2)
    h["gross_mass_kg"] = np.round(per_decl(it["gross_mass_kg"]), 3)
    h["total_packages"] = per_decl(it["packages"]).astype(np.int64)
    h["fraud"] = per_decl((pattern != "").astype(float)) > 0
    forms_idx = {role: forms.pick(rng, h[role]) for role in ("importer", "exporter", "declarant")}
    return DeclChunk(chunk, h, it, forms_idx)
