"""Road-cargo advance information (demo world): one JSON submission -> its canonical records.

A submission names the truck, driver, container and e-lock and nests one or more consignments.
It becomes:

* one ``road_cargo_info`` (the submission, with the consignments summed up: all descriptions,
  first commodity code, total packages and mass; consignor and consignee of the first one);
* one ``manifest`` (the road cargo report for the trip) with one ``consignment`` per nested
  consignment, numbered ``<reference>-<seq>`` as its consignment note;
* one ``transport_equipment`` for the container, under the first consignment (the others name
  it in ``container_ids``), with the e-lock as its customs seal.

The model checks every value afterwards; this function only reshapes. A submission without
consignments is refused with a reason, so it is quarantined rather than half stored.
"""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str | None:
    """Empty strings are absent values."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _total(values: list[Any]) -> Any:
    """Sum when every value is a number; otherwise the first non-number, so the model names it."""
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return v
    return sum(values)


def records(line: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    consignments = line.get("consignments")
    if not isinstance(consignments, list) or not consignments:
        raise ValueError("the submission has no consignments (a non-empty list is required)")
    if not all(isinstance(c, dict) for c in consignments):
        raise ValueError("every consignment must be a JSON object")
    reference, version = line.get("reference"), line.get("version")
    container = _text(line.get("container_id"))
    elock = _text(line.get("elock_id"))
    first = consignments[0]
    notes = [f"{reference}-{c.get('seq', n + 1)}" for n, c in enumerate(consignments)]
    info = {
        "reference": reference,
        "version": version,
        "function_code": line.get("function_code"),
        "submitted_at": line.get("submitted_at"),
        "vehicle_plate": line.get("vehicle_plate"),
        "second_plate": _text(line.get("mainland_plate")),
        "driver_name": _text(line.get("driver_name")),
        "driver_document_number": _text(line.get("driver_document_number")),
        "container_id": container,
        "elock_id": elock,
        "entry_control_point": _text(line.get("entry_control_point")),
        "exit_control_point": _text(line.get("exit_control_point")),
        "planned_arrival_at": line.get("planned_arrival_at"),
        "consignor_name": _text(first.get("consignor_name")),
        "consignor_country": _text(first.get("consignor_country")),
        "consignee_name": _text(first.get("consignee_name")),
        "consignee_country": _text(first.get("consignee_country")),
        "goods_description": " | ".join(str(c.get("goods_description") or "") for c in consignments),
        "hs_code": _text(first.get("hs_code")),
        "packages": _total([c.get("packages") for c in consignments]),
        "gross_mass_kg": _total([c.get("gross_mass_kg") for c in consignments]),
        "transport_document": reference,
    }
    manifest = {
        "manifest_id": reference,
        "version": version,
        "message_type": "road-cargo-info",
        "function_code": line.get("function_code"),
        "issue_datetime": line.get("submitted_at"),
        "mode_of_transport": "3",
        "transport_means_id": line.get("vehicle_plate"),
        "customs_office": _text(line.get("entry_control_point") or line.get("exit_control_point")),
        "arrival_datetime": line.get("planned_arrival_at"),
        "consignment_count": len(consignments),
        "equipment_count": 1 if container else 0,
        "gross_mass_kg": info["gross_mass_kg"],
    }
    out: dict[str, list[dict[str, Any]]] = {
        "road_cargo_info": [info],
        "manifest": [manifest],
        "consignment": [
            {
                "manifest_id": reference,
                "manifest_version": version,
                "transport_document": note,
                "document_type": "consignment_note",
                "sequence": c.get("seq"),
                "consignor_name": _text(c.get("consignor_name")),
                "consignor_street": _text(c.get("consignor_address")),
                "consignor_country": _text(c.get("consignor_country")),
                "consignee_name": _text(c.get("consignee_name")),
                "consignee_street": _text(c.get("consignee_address")),
                "consignee_country": _text(c.get("consignee_country")),
                "goods_description": _text(c.get("goods_description")),
                "hs_code": _text(c.get("hs_code")),
                "hs_codes": _text(c.get("hs_code")),
                "goods_item_count": 1,
                "packages": c.get("packages"),
                "gross_mass_kg": c.get("gross_mass_kg"),
                "container_ids": container,
            }
            for note, c in zip(notes, consignments, strict=True)
        ],
    }
    if container:
        out["transport_equipment"] = [
            {
                "manifest_id": reference,
                "transport_document": notes[0],
                "container_id": container,
                "equipment_type": "CN",
                "full_empty": "full",
                "seals": elock,
                "seal_party": "CU" if elock else None,
            }
        ]
    return out
