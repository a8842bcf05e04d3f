"""Inspections, seizures and cases that follow from the declarations.

Selection is what a real targeting system does: mostly risk-based (the risk engine catches many but
not all frauds, and flags some honest traders) plus a small random share. Labels from inspections
are therefore biased towards what the risk engine already suspects; the ``random`` selections are
the unbiased sample an evaluation should use.
"""

from __future__ import annotations

import numpy as np

from sciti.demo.declarations import DeclChunk
from sciti.demo.entities import World
from sciti.demo.rng import stream
from sciti.demo.writers import Sinks

# Column names are the fields of the inspection_result, seizure and case record kinds.
INSPECTION_HEADER = [
    "inspection_id",
    "target_kind",
    "target_id",
    "declaration_id",
    "inspected_on",
    "inspected_at",
    "office_code",
    "inspection_type",
    "selection_reason",
    "outcome",
    "findings",
    "revenue_raised",
    "revenue_currency",
    "inspector_id",
    "seizure_id",
    "case_id",
]
SEIZURE_HEADER = [
    "seizure_id",
    "item_number",
    "seized_at",
    "office_code",
    "goods_description",
    "hs_code",
    "quantity",
    "quantity_unit",
    "value",
    "currency",
    "reason",
    "declaration_id",
    "inspection_id",
    "case_id",
]
CASE_HEADER = [
    "case_id",
    "case_type",
    "status",
    "opened_on",
    "title",
    "summary",
    "offences",
    "suspects",
    "linked_declarations",
    "linked_seizures",
    "linked_inspections",
    "currency",
]
OFFENCE = {
    "prohibited": "Import of prohibited or controlled goods (Import and Export Ordinance)",
    "counterfeit": "Trade Descriptions Ordinance: goods with forged trade marks",
    "undervaluation": "False declaration of value",
    "misclassification": "False declaration of goods",
    "transhipment": "False declaration of origin",
}
# Physical examination does not find everything.
DETECTION = 0.85


def write_enforcement(world: World, chunk: DeclChunk, sinks: Sinks) -> None:
    rng = stream(world.seed, "inspections", chunk.index)
    rates = world.scale.rates
    h, it = chunk.h, chunk.it
    n = chunk.n
    # Imperfect risk engine: catches most planted frauds, and some honest trade (false positives).
    flag = np.where(h["fraud"], rng.random(n) < 0.55, rng.random(n) < 0.04) | (
        h["front"] & (rng.random(n) < 0.25)
    )
    random_sel = rng.random(n) < rates["random_inspection"]
    risk_sel = flag & (rng.random(n) < rates["risk_inspection"]) & ~random_sel
    chosen = np.flatnonzero(risk_sel | random_sel)
    found = rng.random(n) < DETECTION
    officers = rng.integers(1000, 1400, n)
    delay = rng.integers(1800, 6 * 3600, n)
    seize_u = rng.random(n)
    insp = sinks.rows("inspections/inspections.csv", INSPECTION_HEADER)
    seiz = sinks.rows("seizures/seizures.csv", SEIZURE_HEADER)
    cases = sinks.rows("cases/cases.csv", CASE_HEADER)
    starts = np.concatenate([[0], np.cumsum(h["goods_item_count"])])
    for k in chunk_order(chosen):
        did = str(h["declaration_id"][k])
        sel_at = h["issue"][k] + np.timedelta64(600, "s")
        done = sel_at + np.timedelta64(int(delay[k]), "s")
        rows = list(range(starts[k], starts[k + 1]))
        bad = [r for r in rows if it["pattern"][r]]
        hit = bool(bad) and bool(found[k])
        iid = f"INS{did[3:]}"
        seizure_id = ""
        findings = "Goods examined; agree with declaration."
        revenue = 0.0
        if hit:
            r = bad[0]
            pattern = str(it["pattern"][r])
            findings = f"Discrepancy: {it['detail'][r]}."
            revenue = float(max(0.0, h["true_duty"][k] - h["duty_tax_total"][k]))
            if pattern in ("undervaluation", "misclassification", "transhipment"):
                revenue += round(0.1 * float(h["customs_value"][k]), 2)  # penalty
            if pattern in ("prohibited", "counterfeit") and seize_u[k] < rates["seizure_given_hit"]:
                seizure_id = f"SZ{did[3:]}"
                case_id = f"CASE{did[5:]}"
                value = float(it["true_value"][r])
                seiz.write(
                    {
                        "seizure_id": seizure_id,
                        "item_number": 1,
                        "seized_at": f"{done}Z",
                        "office_code": h["office_code"][k],
                        "goods_description": str(it["detail"][r]).removeprefix("actual goods: "),
                        "hs_code": it["true_hs"][r],
                        "quantity": f"{it['quantity'][r]:.0f}",
                        "quantity_unit": it["quantity_unit"][r],
                        "value": f"{value:.2f}",
                        "currency": "HKD",
                        "reason": OFFENCE[pattern],
                        "declaration_id": did,
                        "inspection_id": iid,
                        "case_id": case_id,
                    }
                )
                # The local trader (importer of an import, exporter of an export) is the subject.
                local = h["importer"][k] if h["declaration_type"][k] == "IM" else h["exporter"][k]
                subject = world.companies[int(local)]
                cases.write(
                    {
                        "case_id": case_id,
                        "case_type": pattern,
                        "status": "open",
                        "opened_on": str(done)[:10],
                        "title": f"{OFFENCE[pattern]}: {subject.en}",
                        "summary": f"{it['detail'][r]} found at {h['office_code'][k]} in {did}",
                        "offences": OFFENCE[pattern],
                        "suspects": f"{subject.en} ({subject.reg_no})",
                        "linked_declarations": did,
                        "linked_seizures": seizure_id,
                        "linked_inspections": iid,
                        "currency": "HKD",
                    }
                )
        insp.write(
            {
                "inspection_id": iid,
                "target_kind": "declaration",
                "target_id": did,
                "declaration_id": did,
                "inspected_on": str(done)[:10],
                "inspected_at": f"{done}Z",
                "office_code": h["office_code"][k],
                "inspection_type": "physical",
                "selection_reason": "random" if random_sel[k] else "risk",
                "outcome": ("seizure" if seizure_id else "discrepancy") if hit else "no_discrepancy",
                "findings": findings,
                "revenue_raised": f"{revenue:.2f}",
                "revenue_currency": "HKD",
                "inspector_id": f"OFF{officers[k]}",
                "seizure_id": seizure_id,
                "case_id": f"CASE{did[5:]}" if seizure_id else "",
            }
        )


def chunk_order(indices: np.ndarray) -> list[int]:
    return [int(i) for i in np.sort(indices)]
