"""Declarations as the clearance system exports them (CSV), plus their ground truth.

Column names are the canonical field names of the ``declaration``, ``declaration_item`` and
``declaration_party`` record kinds, so the CSV connector maps them one to one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sciti.demo.catalogue import PartyForms
from sciti.demo.declarations import DeclChunk
from sciti.demo.writers import Sinks

S, F, INT = pa.string(), pa.float64(), pa.int64()
MONEY = pa.decimal128(18, 2)

HEADER = pa.schema(
    [
        ("declaration_id", S),
        ("version", INT),
        ("function_code", S),
        ("declaration_type", S),
        ("additional_type", S),
        ("issue_datetime", S),
        ("acceptance_date", S),
        ("office_code", S),
        ("procedure_code", S),
        ("mode_of_transport", S),
        ("transport_means_id", S),
        ("transport_nationality", S),
        ("country_of_dispatch", S),
        ("country_of_destination", S),
        ("loading_location", S),
        ("goods_location", S),
        ("delivery_terms", S),
        ("invoice_currency", S),
        ("invoice_amount", MONEY),
        ("exchange_rate", F),
        ("customs_value", MONEY),
        ("duty_tax_total", MONEY),
        ("gross_mass_kg", F),
        ("total_packages", INT),
        ("goods_item_count", INT),
        ("importer_id", S),
        ("exporter_id", S),
        ("declarant_id", S),
        ("transport_document", S),
        ("container_ids", S),
    ]
)
ITEMS = pa.schema(
    [
        ("declaration_id", S),
        ("declaration_version", INT),
        ("item_number", INT),
        ("hs_code", S),
        ("description", S),
        ("country_of_origin", S),
        ("procedure_code", S),
        ("net_mass_kg", F),
        ("gross_mass_kg", F),
        ("quantity", F),
        ("quantity_unit", S),
        ("packages", INT),
        ("package_type", S),
        ("item_price", MONEY),
        ("currency", S),
        ("customs_value", MONEY),
        ("valuation_method", S),
        ("duty_rate", F),
        ("tax_type", S),
        ("duty_amount", MONEY),
        ("container_id", S),
    ]
)
PARTIES = pa.schema(
    [
        ("declaration_id", S),
        ("declaration_version", INT),
        ("role", S),
        ("sequence", INT),
        ("party_id", S),
        ("name", S),
        ("street", S),
        ("city", S),
        ("postcode", S),
        ("country", S),
        ("phone", S),
        ("aeo_status", S),
    ]
)
TRUTH = pa.schema(
    [
        ("declaration_id", S),
        ("channel", S),
        ("importer_entity", S),
        ("exporter_entity", S),
        ("declarant_entity", S),
        ("importer_form", S),
        ("exporter_form", S),
        ("front_company", pa.bool_()),
        ("fraud", pa.bool_()),
        ("patterns", S),
        ("declared_customs_value", MONEY),
        ("true_customs_value", MONEY),
        ("declared_duty", MONEY),
        ("true_duty", MONEY),
    ]
)
LABEL_HEADER = ["feed", "record_key", "sub_key", "pattern", "entity_id", "start", "end", "detail"]
ROLES = ("importer", "exporter", "declarant")


def party_ids(chunk: DeclChunk, forms: PartyForms, role: str) -> np.ndarray:
    """Identifier as the declarant wrote it: foreign parties often give none."""
    key = f"party_ids.{role}"
    if key not in chunk.cache:
        chunk.cache[key] = _party_ids(chunk, forms, role)
    return chunk.cache[key]


def _party_ids(chunk: DeclChunk, forms: PartyForms, role: str) -> np.ndarray:
    ids = np.asarray(
        forms.reg_no.take(pa.array(chunk.forms[role])).to_numpy(zero_copy_only=False), dtype=object
    )
    foreign = (
        np.asarray(forms.country.take(pa.array(chunk.forms[role])).to_numpy(zero_copy_only=False)) != "HK"
    )
    number = np.arange(chunk.n) + chunk.index * 7919
    ids[foreign & ((number * 2654435761) % 10 < 3)] = ""
    return ids.astype(str)


def derived(chunk: DeclChunk) -> dict[str, np.ndarray]:
    """Header fields computed from others (shared by the CSV and XML writers)."""
    if "derived" not in chunk.cache:
        chunk.cache["derived"] = _derived(chunk)
    return chunk.cache["derived"]


def _derived(chunk: DeclChunk) -> dict[str, np.ndarray]:
    h = chunk.h
    issue = np.datetime_as_string(h["issue"], unit="s")
    is_im = h["declaration_type"] == "IM"
    mode = h["mode"]
    terms = np.where(~is_im, "FOB", np.where(mode == "sea", "CIF", np.where(mode == "air", "FCA", "DAP")))
    return {
        "issue_datetime": np.char.add(issue, "Z"),
        "acceptance_date": np.char.partition(issue, "T")[:, 0],
        "procedure_code": np.where(is_im, "4000", "1000"),
        "delivery_terms": terms,
    }


def write_csv_export(chunk: DeclChunk, forms: PartyForms, sinks: Sinks) -> None:
    """Append the chunk's CSV-channel declarations (those not lodged as XML) to the export files."""
    h, it = chunk.h, chunk.it
    keep = ~h["xml"]
    d = derived(chunk)
    ids = {r: party_ids(chunk, forms, r) for r in ROLES}
    n = int(keep.sum())
    header = {
        "declaration_id": h["declaration_id"][keep],
        "version": np.ones(n, dtype=np.int64),
        "function_code": np.full(n, "9"),
        "declaration_type": h["declaration_type"][keep],
        "additional_type": np.full(n, "A"),
        "issue_datetime": d["issue_datetime"][keep],
        "acceptance_date": d["acceptance_date"][keep],
        "office_code": h["office_code"][keep],
        "procedure_code": d["procedure_code"][keep],
        "mode_of_transport": h["mode_of_transport"][keep],
        "transport_means_id": h["transport_means_id"][keep],
        "transport_nationality": h["transport_nationality"][keep],
        "country_of_dispatch": h["country_of_dispatch"][keep],
        "country_of_destination": h["country_of_destination"][keep],
        "loading_location": h["loading_location"][keep],
        "goods_location": h["office_code"][keep],
        "delivery_terms": d["delivery_terms"][keep],
        "invoice_currency": h["invoice_currency"][keep],
        "invoice_amount": h["invoice_amount"][keep],
        "exchange_rate": h["exchange_rate"][keep],
        "customs_value": h["customs_value"][keep],
        "duty_tax_total": h["duty_tax_total"][keep],
        "gross_mass_kg": h["gross_mass_kg"][keep],
        "total_packages": h["total_packages"][keep],
        "goods_item_count": h["goods_item_count"][keep],
        "importer_id": ids["importer"][keep],
        "exporter_id": ids["exporter"][keep],
        "declarant_id": ids["declarant"][keep],
        "transport_document": h["transport_document"][keep],
        "container_ids": h["containers"][keep],
    }
    sinks.csv("declarations/csv/declarations.csv", HEADER).write(header)
    ik = keep[it["decl"]]
    m = int(ik.sum())
    items = {
        "declaration_id": h["declaration_id"][it["decl"]][ik],
        "declaration_version": np.ones(m, dtype=np.int64),
        "procedure_code": d["procedure_code"][it["decl"]][ik],
        "valuation_method": np.full(m, "1"),
        "tax_type": np.where(it["duty_rate"][ik] > 0, "EXCISE", "NONE"),
    }
    for f in ITEMS.names:
        if f not in items:
            items[f] = it[f][ik]
    sinks.csv("declarations/csv/declaration_items.csv", ITEMS).write(items)
    # Party columns stay in Arrow (take + concat): no round trip through numpy unicode arrays.
    parts: dict[str, list[pa.Array]] = {f: [] for f in PARTIES.names}
    rows = np.flatnonzero(keep)
    decl_ids = pa.array(h["declaration_id"][rows].astype(object), type=pa.string())
    ones, empty = pa.array(np.ones(n, dtype=np.int64)), pa.array(np.full(n, "", dtype=object), pa.string())
    for role in ROLES:
        fi = pa.array(chunk.forms[role][rows])
        parts["declaration_id"].append(decl_ids)
        parts["declaration_version"].append(ones)
        parts["role"].append(pa.array(np.full(n, role, dtype=object), pa.string()))
        parts["sequence"].append(ones)
        parts["party_id"].append(pa.array(ids[role][rows].astype(object), pa.string()))
        for col, arr in (
            ("name", forms.name),
            ("street", forms.street),
            ("city", forms.city),
            ("country", forms.country),
            ("phone", forms.phone),
            ("aeo_status", forms.aeo),
        ):
            parts[col].append(arr.take(fi))
        parts["postcode"].append(empty)
    sinks.csv("declarations/csv/declaration_parties.csv", PARTIES).write(
        {k: pa.concat_arrays(v) for k, v in parts.items()}
    )
    sinks.count("declarations.csv", n)


def write_truth(chunk: DeclChunk, forms: PartyForms, sinks: Sinks) -> None:
    """Ground truth per declaration and one label row per planted pattern."""
    h, it = chunk.h, chunk.it
    n = chunk.n
    ent = {
        r: np.asarray(forms.entity.take(pa.array(chunk.forms[r])).to_numpy(zero_copy_only=False))
        for r in ROLES
    }
    patterns = np.full(n, "", dtype=object)
    for k in np.flatnonzero(it["pattern"] != ""):
        d = it["decl"][k]
        p = it["pattern"][k]
        patterns[d] = (
            p if not patterns[d] else (patterns[d] if p in patterns[d].split(";") else f"{patterns[d]};{p}")
        )
    true_value = np.bincount(it["decl"], weights=it["true_value"], minlength=n)
    sinks.csv("ground_truth/declarations.csv", TRUTH).write(
        {
            "declaration_id": h["declaration_id"],
            "channel": np.where(h["xml"], "xml", "csv"),
            "importer_entity": ent["importer"],
            "exporter_entity": ent["exporter"],
            "declarant_entity": ent["declarant"],
            "importer_form": forms.kind[chunk.forms["importer"]],
            "exporter_form": forms.kind[chunk.forms["exporter"]],
            "front_company": h["front"],
            "fraud": h["fraud"],
            "patterns": patterns.astype(str),
            "declared_customs_value": h["customs_value"],
            "true_customs_value": np.round(true_value, 2),
            "declared_duty": h["duty_tax_total"],
            "true_duty": h["true_duty"],
        }
    )
    labels = sinks.rows("ground_truth/labels.csv", LABEL_HEADER)
    issue = np.datetime_as_string(h["issue"], unit="s")
    for k in np.flatnonzero(it["pattern"] != ""):
        d = it["decl"][k]
        labels.write(
            {
                "feed": "declarations",
                "record_key": h["declaration_id"][d],
                "sub_key": int(it["item_number"][k]),
                "pattern": it["pattern"][k],
                "entity_id": ent["importer"][d],
                "start": issue[d] + "Z",
                "end": issue[d] + "Z",
                "detail": it["detail"][k],
            }
        )
