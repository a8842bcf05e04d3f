"""Ground truth about entities (who is who, which forms they take, who is in a ring) and the
reference data an administration would hold (reference prices, control points, approved routes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sciti.demo.catalogue import Goods
from sciti.demo.entities import World
from sciti.demo.variants import company_forms, person_forms
from sciti.demo.writers import Sinks

COMPANY_HEADER = [
    "entity_id",
    "country",
    "reg_no",
    "name_en",
    "name_tc",
    "name_sc",
    "aeo_status",
    "front_group",
    "directors",
    "broker",
    "authorised_brand",
]
PERSON_HEADER = [
    "entity_id",
    "role",
    "nationality",
    "doc_no",
    "birth_year",
    "phone",
    "watchlisted",
    "frequent_courier",
    "structurer",
]
FORM_HEADER = ["entity_id", "entity_type", "form", "name", "street", "city", "phone"]


def write_entities(world: World, sinks: Sinks, frequent: np.ndarray, structurers: np.ndarray) -> None:
    comp = sinks.rows("ground_truth/companies.csv", COMPANY_HEADER)
    forms = sinks.rows("ground_truth/entity_forms.csv", FORM_HEADER)
    for c in world.companies:
        comp.write(
            {
                "entity_id": c.entity_id,
                "country": c.country,
                "reg_no": c.reg_no,
                "name_en": c.en,
                "name_tc": c.tc,
                "name_sc": c.sc,
                "aeo_status": c.aeo,
                "front_group": "" if c.front_group < 0 else f"FG{c.front_group + 1:04d}",
                "directors": ";".join(world.persons[d].entity_id for d in c.directors),
                "broker": c.broker,
                "authorised_brand": c.authorised_brand,
            }
        )
        for f in company_forms(c, world.data):
            forms.write({"entity_id": c.entity_id, "entity_type": "company", **f})
    freq, struct = set(frequent.tolist()), set(int(s) for s in structurers)
    pers = sinks.rows("ground_truth/persons.csv", PERSON_HEADER)
    for i, p in enumerate(world.persons):
        pers.write(
            {
                "entity_id": p.entity_id,
                "role": p.role,
                "nationality": p.nationality,
                "doc_no": p.doc_no,
                "birth_year": p.birth_year,
                "phone": p.phone,
                "watchlisted": p.watchlisted,
                "frequent_courier": i in freq,
                "structurer": i in struct,
            }
        )
        for f in person_forms(p, world.data):
            forms.write({"entity_id": p.entity_id, "entity_type": "person", **f})
    groups = sinks.rows("ground_truth/front_groups.csv", ["group_id", "entity_id", "shares"])
    for g, members in enumerate(world.front_groups):
        a = world.companies[members[0]]
        for m in members:
            c = world.companies[m]
            shared = [
                k
                for k, same in (
                    (
                        "address",
                        (c.street, c.street_no, c.floor, c.room) == (a.street, a.street_no, a.floor, a.room),
                    ),
                    ("phone", c.phone == a.phone),
                    ("director", c.directors[:1] == a.directors[:1]),
                )
                if same
            ]
            groups.write({"group_id": f"FG{g + 1:04d}", "entity_id": c.entity_id, "shares": ";".join(shared)})
    veh = sinks.rows("ground_truth/vehicles.csv", ["vehicle_id", "plate", "mainland_plate", "owner_entity"])
    for v in world.vehicles:
        veh.write({**v, "owner_entity": world.companies[v["owner"]].entity_id})
    ves = sinks.rows("ground_truth/vessels.csv", ["imo", "name", "flag"])
    for v in world.vessels:
        ves.write(v)


def write_reference(world: World, goods: Goods, out: Path) -> None:
    """Reference data the platform is allowed to load (not ground truth)."""
    ref = out / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    usd = world.data["fx_to_hkd"]["USD"]
    lines = ["hs_code,description,unit,reference_unit_price_usd,reference_unit_price_hkd,duty_rate"]
    for i in range(len(goods)):
        desc = str(goods.desc[i]).replace('"', "'")
        lines.append(
            f'{goods.hs[i]}00,"{desc}",{goods.unit[i]},{goods.price[i]:.2f},'
            f"{goods.price[i] * usd:.2f},{goods.duty[i]:g}"
        )
    (ref / "unit_prices.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cps = ["code,name,name_zh,kind,lat,lon,locode"]
    for code, p in world.data["control_points"].items():
        cps.append(f'{code},"{p["name"]}",{p["zh"]},{p["kind"]},{p["lat"]},{p["lon"]},{p["locode"]}')
    (ref / "control_points.csv").write_text("\n".join(cps) + "\n", encoding="utf-8")
    doc = {"clearance_points": world.data["clearance_points"], "routes": world.data["routes"]}
    (ref / "elock_routes.json").write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
