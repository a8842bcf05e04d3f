"""Lookup arrays built once per world so that chunks can be generated with numpy indexing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from sciti.demo.entities import World
from sciti.demo.variants import company_forms

FORM_WEIGHTS = {"official": 0.6, "abbreviated": 0.15, "typo": 0.05, "chinese": 0.1, "romanisation": 0.1}


@dataclass
class Goods:
    hs: np.ndarray  # six-digit HS 2022 codes (str)
    desc: np.ndarray
    unit: np.ndarray
    price: np.ndarray  # reference unit price, USD
    kg: np.ndarray
    duty: np.ndarray  # percent
    decoy: np.ndarray  # index into goods of the code used to misclassify, or -1
    decoy_hs: np.ndarray
    branded: np.ndarray
    origins: list[tuple[list[str], np.ndarray]]
    tranship: np.ndarray  # indices of goods whose origin is laundered
    prohibited: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.hs)


def build_goods(data: dict[str, Any]) -> Goods:
    g = data["goods"]
    hs = np.array([x["hs"] for x in g])
    decoy_hs = np.array([x["decoy"] for x in g])
    origins = []
    for x in g:
        w = np.array(list(x["origins"].values()), dtype=float)
        origins.append((list(x["origins"]), w / w.sum()))
    return Goods(
        hs=hs,
        desc=np.array([x["desc"] for x in g]),
        unit=np.array([x["unit"] for x in g]),
        price=np.array([x["price"] for x in g], dtype=float),
        kg=np.array([x["kg"] for x in g], dtype=float),
        duty=np.array([x["duty"] for x in g], dtype=float),
        decoy=np.array([-1 if x["decoy"] == x["hs"] else i for i, x in enumerate(g)]),
        decoy_hs=decoy_hs,
        branded=np.array([bool(x.get("branded")) for x in g]),
        origins=origins,
        tranship=np.array([i for i, x in enumerate(g) if x["hs"] in data["transhipment_goods"]]),
        prohibited=data["prohibited"],
    )


@dataclass
class PartyForms:
    """Every company's forms flattened into Arrow arrays; ``start[c] + k`` is company c's form k."""

    start: np.ndarray
    count: np.ndarray
    kind: np.ndarray  # form kind name per flattened form
    name: pa.Array
    street: pa.Array
    city: pa.Array
    phone: pa.Array
    country: pa.Array
    reg_no: pa.Array
    entity: pa.Array
    aeo: pa.Array
    nad_cache: dict[int, str] = field(default_factory=dict)  # EDIFACT NAD text per form (cuscar)
    ftx_cache: dict[str, str] = field(default_factory=dict)  # EDIFACT FTX segment per goods text

    def pick(self, rng: np.random.Generator, companies: np.ndarray) -> np.ndarray:
        """Choose one form per appearance, mostly the official one, never one a company lacks."""
        kinds = list(FORM_WEIGHTS)
        k = rng.choice(len(kinds), size=len(companies), p=np.array(list(FORM_WEIGHTS.values())))
        k = np.where(k >= self.count[companies], 0, k)
        return self.start[companies] + k


def build_forms(world: World) -> PartyForms:
    lists: list[list[str]] = [[] for _ in range(9)]
    names, streets, cities, phones, kinds, countries, regs, ents, aeos = lists
    start = np.zeros(len(world.companies), dtype=np.int64)
    count = np.zeros(len(world.companies), dtype=np.int64)
    for i, c in enumerate(world.companies):
        forms = company_forms(c, world.data)
        start[i], count[i] = len(names), len(forms)
        for f in forms:
            names.append(f["name"])
            streets.append(f["street"])
            cities.append(f["city"])
            phones.append(f["phone"])
            kinds.append(f["form"])
            countries.append(c.country)
            regs.append(c.reg_no)
            ents.append(c.entity_id)
            aeos.append(c.aeo)
    return PartyForms(
        start,
        count,
        np.array(kinds),
        pa.array(names),
        pa.array(streets),
        pa.array(cities),
        pa.array(phones),
        pa.array(countries),
        pa.array(regs),
        pa.array(ents),
        pa.array(aeos),
    )
