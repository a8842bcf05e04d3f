"""Intelligence reports: free text in English, Chinese and Russian that mention entities.

Some reports are true leads about planted patterns (front-company rings, watch-listed persons,
cash couriers); the rest mention ordinary traders and travellers (noise), as real reporting does.
Which entity each mention refers to, and whether the lead is true, is in the ground truth only.
"""

from __future__ import annotations

from datetime import datetime, time

import numpy as np

from sciti.demo.entities import World
from sciti.demo.rng import stream
from sciti.demo.variants import company_forms, person_forms
from sciti.demo.writers import Sinks

MENTION_HEADER = ["report_id", "entity_id", "entity_type", "surface", "true_lead"]
TEMPLATES = {
    "en": (
        "Source reports that {company} is moving {goods} through {cp} under false descriptions. "
        "{person} is said to arrange the paperwork. A container ({container}) is due within two weeks."
    ),
    "zh": (
        "線人報稱{company}經{cp_zh}以虛假貨品描述運送{goods}，"
        "由{person}安排文件。貨櫃{container}預計兩週內抵港。"
    ),
    "ru": (
        "По данным источника, компания {company} перевозит {goods} через {cp} под ложным описанием. "
        "Документы оформляет {person}. Контейнер {container} ожидается в течение двух недель."
    ),
}
GOODS = {
    "en": ["counterfeit watches", "undeclared cigarettes", "ivory", "electronics at low prices", "cash"],
    "zh": ["假冒手錶", "未完稅香煙", "象牙", "低報價值的電子產品", "現金"],
    "ru": [
        "поддельные часы",
        "незадекларированные сигареты",
        "слоновую кость",
        "дешёвую электронику",
        "наличные",
    ],
}


def write_intel(world: World, sinks: Sinks, structurers: np.ndarray) -> None:
    sc, data = world.scale, world.data
    rng = stream(world.seed, "intel")
    n, days = int(sc.intel_reports), int(sc.days)
    start = np.datetime64(datetime.combine(sc.start, time()), "s")
    fronts = [c for grp in world.front_groups for c in grp]
    suspects = [i for i, p in enumerate(world.persons) if p.watchlisted] + [int(s) for s in structurers]
    cps = {k: v for k, v in data["control_points"].items()}
    out = sinks.jsonl("intel/reports.jsonl")
    mentions = sinks.rows("ground_truth/intel_mentions.csv", MENTION_HEADER)
    for r in range(n):
        lang = str(rng.choice(["en", "zh", "ru"], p=[0.6, 0.3, 0.1]))
        true_lead = rng.random() < 0.5 and bool(fronts)
        ci = int(rng.choice(fronts)) if true_lead else int(rng.choice(world.hk_idx))
        pi = int(rng.choice(suspects)) if true_lead and suspects else int(rng.integers(len(world.persons)))
        company, person = world.companies[ci], world.persons[pi]
        cforms, pforms = company_forms(company, data), person_forms(person, data)
        if lang == "zh":
            cf = next((f for f in cforms if f["form"] == "chinese"), cforms[0])
            pf = next(f for f in pforms if f["form"] == "native")
        else:
            cf = cforms[int(rng.integers(len(cforms)))] if lang == "en" else cforms[0]
            pf = pforms[int(rng.integers(len(pforms)))]
            if cf["form"] == "chinese":
                cf = cforms[0]
        cp = str(rng.choice(list(cps)))
        container = world.containers[int(rng.integers(len(world.containers)))]
        text = TEMPLATES[lang].format(
            company=cf["name"],
            person=pf["name"],
            cp=cps[cp]["name"],
            cp_zh=cps[cp]["zh"],
            goods=GOODS[lang][int(rng.integers(5))],
            container=container,
        )
        rid = f"IR26{r + 1:06d}"
        received = start + np.timedelta64(int(rng.integers(0, days * 86400)), "s")
        out.write(
            {
                "report_id": rid,
                "received_at": f"{np.datetime_as_string(received, unit='s')}Z",
                "language": lang,
                "source_reliability": str(rng.choice(list("ABCDEF"), p=[0.05, 0.25, 0.35, 0.2, 0.1, 0.05])),
                "info_credibility": int(rng.integers(1, 7)),
                "text": text,
            }
        )
        mentions.write(
            {
                "report_id": rid,
                "entity_id": company.entity_id,
                "entity_type": "company",
                "surface": cf["name"],
                "true_lead": true_lead,
            }
        )
        mentions.write(
            {
                "report_id": rid,
                "entity_id": person.entity_id,
                "entity_type": "person",
                "surface": pf["name"],
                "true_lead": true_lead,
            }
        )
        mentions.write(
            {
                "report_id": rid,
                "entity_id": container,
                "entity_type": "container",
                "surface": container,
                "true_lead": False,
            }
        )
