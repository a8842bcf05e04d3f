"""The world's actors: companies, persons, vehicles, vessels, flights, containers and e-locks.

Entities are few compared with transactions (a large world has 200k companies against 10M
declarations), so they are built once in memory; feeds then draw indices into them. Each entity
keeps its true identity here; how it *looks* in each source system comes from ``variants``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sciti.demo.config import Scale, world_data
from sciti.demo.ids import container_numbers, imo_number, uscc
from sciti.demo.rng import stream

CONTAINER_OWNERS = ["MSCU", "MAEU", "CSQU", "OOLU", "EGLU", "HLXU", "CMAU", "COSU", "ONEU", "TGHU"]
AIRLINES = ["CX", "KA", "UO", "HX", "CA", "CZ", "MU", "SQ", "JL", "KE", "EK", "LH"]
HKID_LETTERS = "ABCDEGHKMPRVYZ"
MAX_CONTAINERS = 300_000


def hkid(letter: str, digits: str) -> str:
    """Hong Kong identity card number with its check character, e.g. ``A123456(3)``."""
    values = [36 * 9, (ord(letter) - 55) * 8] + [
        int(d) * w for d, w in zip(digits, range(7, 1, -1), strict=True)
    ]
    check = (11 - sum(values) % 11) % 11
    return f"{letter}{digits}({'A' if check == 10 else check})"


@dataclass(slots=True)
class Company:
    entity_id: str
    country: str
    reg_no: str
    en: str  # official English name
    tc: str  # traditional Chinese name ("" for non-Chinese companies)
    sc: str  # simplified Chinese name
    roman_alt: str  # English name with the other romanisation of its Chinese word, or ""
    street_no: int
    street: int  # index into world streets (HK) or -1
    district: int
    floor: int
    room: int
    city: str
    phone: str
    aeo: str
    directors: list[int] = field(default_factory=list)
    front_group: int = -1
    broker: bool = False
    authorised_brand: str = ""


@dataclass(slots=True)
class Person:
    entity_id: str
    surname: int  # index into surnames, or -1 for a foreign person
    given: tuple[int, int]
    foreign: tuple[str, str, str] | None
    nationality: str
    doc_no: str
    birth_year: int
    phone: str
    role: str  # director, declarant, driver, passenger, courier
    watchlisted: bool = False


@dataclass
class World:
    """Everything generated once per world and shared by the feeds."""

    scale: Scale
    seed: int
    companies: list[Company]
    persons: list[Person]
    vehicles: list[dict[str, Any]]
    vessels: list[dict[str, Any]]
    flights: list[str]
    containers: list[str]
    elocks: list[str]
    front_groups: list[list[int]]
    hk_idx: np.ndarray  # companies based in Hong Kong
    foreign_idx: np.ndarray  # companies outside Hong Kong
    broker_idx: np.ndarray
    popularity: np.ndarray  # trading weight per company (heavy-tailed)
    data: dict[str, Any]
    # Lookup arrays derived from the entities, computed once per process by the feeds that use
    # them (chunk generators would otherwise rebuild them from 200k objects every chunk).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def persons_with_role(self, role: str) -> np.ndarray:
        return np.array([i for i, p in enumerate(self.persons) if p.role == role], dtype=np.int64)


def _phone(rng: np.random.Generator, country: str) -> str:
    # Indexing a fixed string, not rng.choice on a list: this runs once per entity.
    if country == "HK":
        return f"+852 {'23569'[rng.integers(5)]}{rng.integers(0, 10**7):07d}"
    if country == "CN":
        return f"+86 1{'358'[rng.integers(3)]}{rng.integers(0, 10**9):09d}"
    return f"+{rng.integers(1, 99)} {rng.integers(10**8, 10**9)}"


def _companies(scale: Scale, seed: int, data: dict[str, Any]) -> list[Company]:
    rng = stream(seed, "entities.companies")
    n = int(scale.companies)
    countries = list(data["company_countries"])
    weights = np.array(list(data["company_countries"].values()), dtype=float)
    country_of = rng.choice(countries, size=n, p=weights / weights.sum())
    words, inds = data["name_words"], data["industries"]
    quals = ["", "(Asia) ", "(HK) ", "(International) ", "(Group) ", "(China) ", "(Pacific) ", "(Global) "]
    out: list[Company] = []
    for i in range(n):
        cc = str(country_of[i])
        eid = f"C{i + 1:07d}"
        aeo = ""
        if cc == "HK" and rng.random() < 0.04:
            aeo = "HKAEO-T2" if rng.random() < 0.3 else "HKAEO-T1"
        elif cc in data["mra_partners"] and rng.random() < 0.05:
            aeo = f"AEO-MRA-{cc}"
        if cc in ("HK", "CN"):
            w = words[rng.integers(len(words))]
            ind = inds[rng.integers(len(inds))]
            q = quals[rng.integers(len(quals))] if cc == "HK" else ""
            if cc == "HK":
                en = f"{w[0]} {q}{ind[0]} Limited"
                alt = f"{w[4]} {q}{ind[0]} Limited"
                tc, sc = f"{w[1]}{ind[1]}有限公司", f"{w[2]}{ind[2]}有限公司"
                reg = f"{rng.integers(10**7, 10**8)}"
                street, district = (
                    int(rng.integers(len(data["hk_streets"]))),
                    int(rng.integers(len(data["hk_districts"]))),
                )
                city = data["hk_districts"][district]["en"]
            else:
                cityd = data["mainland_cities"][rng.integers(len(data["mainland_cities"]))]
                en = f"{cityd['py']} {w[3]} {ind[0]} Co., Ltd."
                alt = f"{cityd['py']} {w[4].replace(' ', '')} {ind[0]} Co., Ltd."
                tc, sc = f"{cityd['tc']}{w[1]}{ind[1]}有限公司", f"{cityd['sc']}{w[2]}{ind[2]}有限公司"
                org = "".join(str(d) for d in rng.integers(0, 10, 9))
                reg = uscc(f"91{cityd['code']}{org}")
                street, district, city = -1, -1, cityd["en"]
        else:
            fw = data["foreign_company_words"]
            fk = data["foreign_company_kinds"]
            legal = ["Inc.", "Ltd", "GmbH", "Pte Ltd", "LLC"][rng.integers(5)]
            en = f"{fw[rng.integers(len(fw))]} {fk[rng.integers(len(fk))]} {legal}"
            alt, tc, sc = "", "", ""
            reg = f"{cc}{rng.integers(10**8, 10**9)}"
            street, district, city = -1, -1, data["foreign_cities"].get(cc, cc)
        out.append(
            Company(
                entity_id=eid,
                country=cc,
                reg_no=reg,
                en=en,
                tc=tc,
                sc=sc,
                roman_alt=alt,
                street_no=int(rng.integers(1, 400)),
                street=street,
                district=district,
                floor=int(rng.integers(1, 40)),
                room=int(rng.integers(1, 30)),
                city=city,
                phone=_phone(rng, cc),
                aeo=aeo,
            )
        )
    return out


def _persons(scale: Scale, seed: int, data: dict[str, Any]) -> list[Person]:
    rng = stream(seed, "entities.persons")
    n = int(scale.persons)
    roles = rng.choice(
        ["director", "declarant", "driver", "passenger", "courier"], size=n, p=[0.2, 0.1, 0.2, 0.45, 0.05]
    )
    foreign = data["foreign_persons"]
    out = []
    for i in range(n):
        eid = f"P{i + 1:07d}"
        u = rng.random()
        if u < 0.55:
            nat = "HK"
            doc = hkid(HKID_LETTERS[rng.integers(len(HKID_LETTERS))], f"{rng.integers(0, 10**6):06d}")
        elif u < 0.9:
            nat = "CN"
            doc = f"H{rng.integers(10**7, 10**8)}"  # Home Return Permit style
        else:
            nat = list(foreign)[rng.integers(len(foreign))]
            doc = f"{nat}{rng.integers(10**7, 10**8)}"
        surname, given, fp = -1, (0, 0), None
        if nat in ("HK", "CN"):
            surname = int(rng.integers(len(data["surnames"])))
            given = (int(rng.integers(len(data["given_chars"]))), int(rng.integers(len(data["given_chars"]))))
        else:
            fp = tuple(foreign[nat][rng.integers(len(foreign[nat]))])
        out.append(
            Person(
                entity_id=eid,
                surname=surname,
                given=given,
                foreign=fp,
                nationality=nat,
                doc_no=doc,
                birth_year=int(rng.integers(1955, 2004)),
                phone=_phone(rng, nat if nat in ("HK", "CN") else "XX"),
                role=str(roles[i]),
            )
        )
    wl = rng.random(n) < scale.rates["watchlist_share"]
    for i in np.flatnonzero(wl).tolist():
        out[i].watchlisted = True
    return out


def _plant_front_groups(
    scale: Scale, seed: int, companies: list[Company], persons: list[Person]
) -> list[list[int]]:
    """Rings of HK companies sharing an address, a phone or a director (a planted pattern)."""
    rng = stream(seed, "entities.fronts")
    hk = [i for i, c in enumerate(companies) if c.country == "HK"]
    # An array, not a list: rng.choice converts a list on every call (quadratic at 200k companies).
    directors = np.array([i for i, p in enumerate(persons) if p.role == "director"], dtype=np.int64)
    for ci in hk:  # every HK company has one or two directors
        companies[ci].directors = rng.choice(directors, size=int(rng.integers(1, 3))).tolist()
    target = int(round(len(hk) * scale.rates["front_company_share"]))
    pool = [int(i) for i in rng.permutation(hk)]
    groups: list[list[int]] = []
    taken = 0
    while target >= 3 and len(pool) - taken >= 3:
        size = min(int(rng.integers(3, 7)), target, len(pool) - taken)
        members, taken = pool[taken : taken + size], taken + size
        target -= size
        anchor = companies[members[0]]
        shared = rng.choice(["address", "phone", "director"], size=2, replace=False)
        for m in members:
            c = companies[m]
            c.front_group = len(groups)
            if "address" in shared:
                c.street, c.street_no, c.district, c.floor, c.room, c.city = (
                    anchor.street,
                    anchor.street_no,
                    anchor.district,
                    anchor.floor,
                    anchor.room,
                    anchor.city,
                )
            if "phone" in shared:
                c.phone = anchor.phone
            if "director" in shared:
                c.directors = [anchor.directors[0]]
            c.aeo = ""
        groups.append(members)
    return groups


def build_world(scale: Scale, seed: int) -> World:
    """Create every entity of the world for ``scale`` and ``seed`` (deterministic)."""
    data = world_data()
    companies = _companies(scale, seed, data)
    persons = _persons(scale, seed, data)
    groups = _plant_front_groups(scale, seed, companies, persons)
    rng = stream(seed, "entities.assets")
    hk_idx = np.array([i for i, c in enumerate(companies) if c.country == "HK"], dtype=np.int64)
    foreign_idx = np.array([i for i, c in enumerate(companies) if c.country != "HK"], dtype=np.int64)
    n_brokers = max(5, len(hk_idx) // 40)
    brokers = np.sort(rng.choice(hk_idx, size=min(n_brokers, len(hk_idx)), replace=False))
    for b in brokers:
        companies[b].broker = True
    brands = data["brands"]  # each brand has its own authorised importer in Hong Kong
    brand_owners = rng.choice(hk_idx, size=len(brands), replace=len(hk_idx) < len(brands))
    for brand, owner in zip(brands, brand_owners.tolist(), strict=True):
        companies[owner].authorised_brand = companies[owner].authorised_brand or brand
    popularity = rng.pareto(1.2, size=len(companies)) + 1.0
    n_veh = int(scale.vehicles)
    vehicles = []
    for i in range(n_veh):
        if rng.random() < 0.55:
            letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
            plate = f"{letters[rng.integers(23)]}{letters[rng.integers(23)]}{rng.integers(1, 9999)}"
            second = f"粵Z{rng.integers(1000, 9999)}港"  # cross-boundary vehicles carry both plates
        else:
            plate = f"粵{'BSEXC'[rng.integers(5)]}{rng.integers(10000, 99999)}"
            second = ""
        vehicles.append(
            {
                "vehicle_id": f"V{i + 1:06d}",
                "plate": plate,
                "mainland_plate": second,
                "owner": int(rng.choice(hk_idx if plate[0] != "粵" else foreign_idx)),
            }
        )
    vessel_prefix = ["OOCL", "COSCO", "MAERSK", "MSC", "EVER", "ONE", "CMA CGM", "HMM"]
    vessel_suffix = ["HONG KONG", "SHENZHEN", "PRIDE", "FORTUNE", "HARMONY", "GLORY", "STAR", "OCEAN"]
    serials = rng.choice(np.arange(900000, 999999), size=int(scale.vessels), replace=False)
    vessels = [
        {
            "imo": imo_number(int(s)),
            "name": f"{vessel_prefix[i % 8]} {vessel_suffix[(i // 8 + i) % 8]} {i // 64 + 1}",
            "flag": str(rng.choice(["HK", "PA", "LR", "SG", "MH", "CN"])),
        }
        for i, s in enumerate(serials)
    ]
    flights = [f"{AIRLINES[i % len(AIRLINES)]}{100 + (i * 37) % 900}" for i in range(int(scale.flights))]
    # Containers are reused across the year: a pool that stops growing keeps a large world's
    # entity tables (held by every worker process) small.
    n_cont = min(max(50, int(scale.declarations) // 3), MAX_CONTAINERS)
    owners = [CONTAINER_OWNERS[j] for j in rng.integers(0, len(CONTAINER_OWNERS), n_cont)]
    containers = container_numbers(owners, rng.choice(10**6, size=n_cont, replace=n_cont > 10**6))
    elocks = [f"EL{i + 1:06d}" for i in range(int(scale.elocks))]
    return World(
        scale,
        seed,
        companies,
        persons,
        vehicles,
        vessels,
        flights,
        containers,
        elocks,
        groups,
        hk_idx,
        foreign_idx,
        brokers,
        popularity,
        data,
    )
