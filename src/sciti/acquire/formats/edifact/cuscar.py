"""CUSCAR (customs cargo report) -> manifest, consignment and transport_equipment records.

The message has already passed the structure check, so segments arrive in table order; a small
state machine tells which group a segment belongs to (an LOC after a header TDT is a voyage port,
after a CNI it is the consignment's port of loading ...). Both D.96B and D.16A lay CUSCAR out the
same way for the parts mapped here.

Consignments: SG7 (CNI) holds SG8 reference groups, each with its own parties and goods items
(SG11, SG14). Each SG8 is one consignment record: its RFF (BM, BH, AWB, HWB, AAM) is the transport
document, and the CNI's document, when it differs, is the master (consolidations: one master bill,
many house bills). A CNI without SG8 gives one record from the CNI document alone.

Linking: a message carries many consignments, and the runner links every child record to the
first record of the parent kind. So each transport_equipment record also names its consignment by
``manifest_id`` + ``transport_document``: the link that counts. A container goes to the
consignments whose goods items place cargo in it (SGP); with no SGP and a single consignment, all
containers belong to it; a container that no consignment refers to (an empty one) is still stored,
with an empty ``transport_document``.
"""

from __future__ import annotations

from typing import Any

from sciti.acquire.formats.edifact import values as v
from sciti.acquire.formats.edifact.syntax import Segment

_DOC_TYPES = {
    "BM": "bill_of_lading",
    "BH": "house_bill_of_lading",
    "MB": "master_bill_of_lading",
    "AWB": "air_waybill",
    "HWB": "house_air_waybill",
    "MWB": "master_air_waybill",
    "AAM": "consignment_note",
}
_MASTER = {"MB", "MWB"}
_DEFAULT_DOC = {"1": "bill_of_lading", "4": "air_waybill", "3": "consignment_note", "2": "consignment_note"}
_FULL_EMPTY = {"4": "empty", "5": "full", "6": "lcl", "7": "full", "8": "full"}


class MappingError(ValueError):
    """A message that is well-formed but lacks what the canonical record needs (said in plain words).

    ``segment`` is the segment the missing value belongs to, so the reason can point at it.
    """

    def __init__(self, message: str, segment: Segment | None = None):
        super().__init__(message)
        self.segment = segment


def _equipment(eqd: Segment) -> dict[str, Any]:
    return {
        "container_id": eqd.get(1, 0) or None,
        "equipment_type": eqd.get(0) or None,
        "size_type": eqd.get(2, 0) or None,
        "supplier": eqd.get(3) or None,
        "full_empty": _FULL_EMPTY.get(eqd.get(5), eqd.get(5) or None),
        "_seals": [],
        "seal_party": None,
        "gross_mass_kg": None,
        "tare_mass_kg": None,
        "temperature_c": None,
    }


def _consignment(cni: Segment, ref: tuple[str, str] | None, position: int) -> dict[str, Any]:
    """A consignment record in the making: one per SG8 reference group (or per bare CNI)."""
    return {
        "cni_document": cni.get(1, 0) or None,
        "_seg": cni,
        "ref": ref,
        "sequence": position,
        "_parties": {},
        "_goods": [],
        "_locs": {},
    }


def map_cuscar(segments: list[Segment], decimal: str = ".") -> dict[str, list[dict[str, Any]]]:
    """Records of one CUSCAR message (``segments`` = UNH..UNT, structure already checked)."""
    head: dict[str, Any] = {"message_type": "CUSCAR"}
    locs: dict[str, str] = {}
    dates: dict[str, tuple[str, str]] = {}
    totals: dict[str, str] = {}
    equipment: list[dict[str, Any]] = []
    consignments: list[dict[str, Any]] = []
    section = "header"
    tdt_seen = False
    current_eq: dict[str, Any] | None = None
    cni: Segment | None = None
    cons: dict[str, Any] | None = None
    goods: dict[str, Any] | None = None

    for seg in segments:
        tag = seg.tag
        if tag == "BGM":
            head["document_code"] = seg.get(0, 0) or None
            head["manifest_id"] = seg.get(1, 0) or None
            ver = seg.get(1, 1)
            head["version"] = int(ver) if ver.isdigit() else 1
            head["function_code"] = seg.get(2) or None
        elif tag == "EQD":
            current_eq = _equipment(seg)
            equipment.append(current_eq)
            section = "eqd"
        elif tag == "CNI":
            cni = seg
            cons = _consignment(cni, None, len(consignments) + 1)  # until an SG8 RFF says otherwise
            consignments.append(cons)
            goods = None
            section = "cni"
        elif tag == "RFF" and cons is not None and section not in ("tdt9", "rff10", "nad11"):
            # SG8: each reference group is one (house) consignment under the CNI
            if cons["ref"] is not None or cons["_goods"] or cons["_parties"]:
                assert cni is not None  # cons exists only after a CNI
                cons = _consignment(cni, None, len(consignments) + 1)
                consignments.append(cons)
            cons["ref"] = (seg.get(0, 0), seg.get(0, 1))
            cons["_seg"] = seg
            goods = None
            section = "rff8"
        elif tag == "AUT":
            section = "aut"
        elif cons is None and current_eq is None:  # message header: SG1-SG4
            if tag == "DTM" and section == "header":
                q, val, fmt = v.dtm(seg)
                if q == "137":
                    head["issue_datetime"] = v.timestamp_value(val, fmt)
            elif tag == "NAD":  # SG2: the party lodging the report
                if "reporting_party_id" not in head:
                    p = v.party(seg)
                    head["reporting_party_id"], head["reporting_party_name"] = p["id"], p["name"]
                section = "nad"
            elif tag == "TDT":
                section = "tdt"
                if not tdt_seen:  # the first TDT is the conveyance of the report
                    tdt_seen = True
                    head["conveyance_reference"] = seg.get(1) or None
                    head["mode_of_transport"] = seg.get(2, 0) or None
                    head["carrier_id"] = seg.get(4, 0) or None
                    head["carrier_name"] = seg.get(4, 3) or None
                    head["transport_means_id"] = seg.get(7, 0) or None
                    head["transport_means_name"] = seg.get(7, 3) or None
                    head["transport_nationality"] = seg.get(7, 4) or None
            elif tag == "LOC" and section in ("tdt", "header"):
                locs.setdefault(seg.get(0), seg.get(1, 0))
            elif tag == "DTM" and section == "tdt":
                q, val, fmt = v.dtm(seg)
                dates.setdefault(q, (val, fmt))
            elif tag in ("RFF", "FTX", "GIS", "GEI"):
                section = "header" if tag != "RFF" else "rff"
            elif tag == "CNT":
                totals.setdefault(seg.get(0, 0), seg.get(0, 1))
        elif cons is None:  # equipment groups (SG5/SG6) and the CNT after them
            assert current_eq is not None
            if tag == "SEL":
                current_eq["_seals"].append(seg.get(0))
                current_eq["seal_party"] = current_eq["seal_party"] or seg.get(1, 0) or None
            elif tag == "MEA":
                m = v.mass_kg(seg)
                if m and m[0] in v.GROSS:
                    current_eq["gross_mass_kg"] = m[1]
                elif m and m[0] in v.TARE:
                    current_eq["tare_mass_kg"] = m[1]
            elif tag == "TMP":
                t = v.number(seg.get(1, 0), decimal)
                if isinstance(t, float) and seg.get(1, 1) == "FAH":
                    t = round((t - 32) * 5 / 9, 2)
                current_eq["temperature_c"] = t
            elif tag == "CNT":
                totals.setdefault(seg.get(0, 0), seg.get(0, 1))
        else:
            section, goods = _consignment_segment(seg, cons, section, goods, decimal)

    if not head.get("manifest_id"):
        bgm = next((s for s in segments if s.tag == "BGM"), None)
        raise MappingError("BGM has no document number (C106/1004): it is the manifest reference", bgm)
    _set_voyage(head, locs, dates)
    head["consignment_count"] = len(consignments)
    head["equipment_count"] = len(equipment)
    head["gross_mass_kg"] = v.number(totals.get("7", ""), decimal)
    records_cons = [_finish_consignment(c, head) for c in consignments]
    return {
        "manifest": [head],
        "consignment": records_cons,
        "transport_equipment": _link_equipment(equipment, consignments, head),
    }


def _consignment_segment(
    seg: Segment, cons: dict[str, Any], section: str, goods: dict[str, Any] | None, decimal: str
) -> tuple[str, dict[str, Any] | None]:
    """Apply one segment inside SG7 (consignment) and return the new (section, goods item)."""
    tag = seg.tag
    if tag == "RFF":  # SG10 under an on-carriage TDT, or a reference of a party (SG11)
        return ("rff10" if section in ("tdt9", "rff10") else section), goods
    if tag == "TDT":
        return "tdt9", goods
    if tag == "NAD":
        if section == "gid" or section.startswith("gid_"):
            return section, goods
        cons["_parties"].setdefault(seg.get(0), v.party(seg))
        return "nad11", goods
    if tag == "QTY":
        return ("gid_qty" if goods is not None else "qty13"), goods
    if tag == "GID":
        goods = {
            "packages": v.integer(seg.get(1, 0)),
            "package_type": seg.get(1, 1) or None,
            "text": [],
            "gross": None,
            "hs": [],
            "containers": [],
            "un": [],
        }
        cons["_goods"].append(goods)
        return "gid", goods
    if tag in ("GIS", "GEI") and goods is not None:
        return "gid_gis", goods
    if goods is not None and section == "gid":
        if tag == "FTX" and seg.get(0) in ("AAA", "AAI", ""):
            goods["text"].append(" ".join(p for p in (seg.elements[3] if len(seg.elements) > 3 else []) if p))
        elif tag == "MEA":
            m = v.mass_kg(seg)
            if m and m[0] in v.GROSS:
                goods["gross"] = m[1]
        elif tag == "PAC" and goods["packages"] is None:
            goods["packages"], goods["package_type"] = v.integer(seg.get(0)), seg.get(2, 0) or None
        elif tag == "SGP":
            goods["containers"].append((seg.get(0, 0), v.integer(seg.get(1))))
        elif tag == "DGS":
            goods["un"].append(seg.get(2, 0))
        elif tag == "CST":
            codes = [seg.get(k, 0) for k in range(1, len(seg.elements))]
            goods["hs"] += [c for c in codes if c.isdigit() and len(c) >= 6]
        return section, goods
    if tag == "LOC" and section in ("cni", "rff8"):
        cons["_locs"].setdefault(seg.get(0), seg.get(1, 0) or seg.get(1, 3))
    return section, goods


def _set_voyage(head: dict[str, Any], locs: dict[str, str], dates: dict[str, tuple[str, str]]) -> None:
    def first(*codes: str) -> str | None:
        return next((locs[c] for c in codes if locs.get(c)), None)

    def when(*codes: str) -> str | None:
        return next((v.timestamp_value(*dates[c]) for c in codes if c in dates and dates[c][0]), None)

    head["departure_location"] = first("5", "9", "125")
    head["arrival_location"] = first("60", "24", "11", "8")
    head["next_location"] = first("61")
    head["customs_office"] = first("22", "41")
    head["departure_datetime"] = when("186", "133")
    head["arrival_datetime"] = when("178", "132")


def _finish_consignment(c: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    qualifier, value = c["ref"] or ("", "")
    cni_doc = c["cni_document"]
    doc = value if qualifier in _DOC_TYPES and qualifier not in _MASTER and value else cni_doc or value
    if not doc:
        raise MappingError(
            f"consignment {c['sequence']} has no transport document number: give it in CNI C503/1004 "
            "or in an RFF with qualifier BM, BH, AWB, HWB or AAM",
            c["_seg"],
        )
    master = (
        cni_doc if cni_doc and cni_doc != doc else (value if qualifier in _MASTER and value != doc else None)
    )
    doc_type = _DOC_TYPES.get(qualifier) if value == doc else None
    if doc_type is None:
        doc_type = _DEFAULT_DOC.get(head.get("mode_of_transport") or "")
    goods = c["_goods"]
    parties = c["_parties"]
    cz, cn, ni = parties.get("CZ", {}), parties.get("CN", {}), parties.get("NI", {})
    packages = [g["packages"] for g in goods if isinstance(g["packages"], int)]
    hs = [code for g in goods for code in g["hs"]]
    containers = [cid for g in goods for cid, _ in g["containers"] if cid]
    c["_containers"] = containers
    c["transport_document"] = doc
    return {
        "manifest_id": head["manifest_id"],
        "manifest_version": head.get("version"),
        "transport_document": doc,
        "document_type": doc_type,
        "master_document": master,
        "sequence": c["sequence"],
        "consignor_id": cz.get("id"),
        "consignor_name": cz.get("name"),
        "consignor_street": cz.get("street"),
        "consignor_city": cz.get("city"),
        "consignor_country": cz.get("country"),
        "consignee_id": cn.get("id"),
        "consignee_name": cn.get("name"),
        "consignee_street": cn.get("street"),
        "consignee_city": cn.get("city"),
        "consignee_country": cn.get("country"),
        "notify_party_name": ni.get("name"),
        "goods_description": v.join([" ".join(g["text"]) for g in goods], " | "),
        "hs_code": hs[0] if hs else None,
        "hs_codes": v.join(hs),
        "goods_item_count": len(goods),
        "packages": sum(packages) if packages else None,
        "package_type": next((g["package_type"] for g in goods if g["package_type"]), None),
        "gross_mass_kg": _total([g["gross"] for g in goods]),
        "loading_location": c["_locs"].get("9") or c["_locs"].get("76"),
        "discharge_location": c["_locs"].get("11"),
        "delivery_location": c["_locs"].get("7") or c["_locs"].get("8"),
        "receipt_location": c["_locs"].get("88"),
        "dangerous_goods": v.join([un for g in goods for un in g["un"]]),
        "container_ids": v.join(containers),
    }


def _total(values: list[Any]) -> Any:
    """Sum of the stated numbers; a value that is not a number is passed on as written, so the
    model's validation quarantines the message naming it instead of a wrong total being stored."""
    stated = [x for x in values if x is not None]
    bad = next((x for x in stated if not isinstance(x, float)), None)
    if bad is not None:
        return bad
    return round(sum(stated), 3) if stated else None


def _link_equipment(
    equipment: list[dict[str, Any]], consignments: list[dict[str, Any]], head: dict[str, Any]
) -> list[dict[str, Any]]:
    by_id = {e["container_id"]: e for e in equipment if e["container_id"]}
    placed: dict[str, dict[str, int | None]] = {}  # container -> {transport document: packages}
    for c in consignments:
        for g in c["_goods"]:
            for cid, pk in g["containers"]:
                if cid:
                    docs = placed.setdefault(cid, {})
                    prev = docs.get(c["transport_document"])
                    docs[c["transport_document"]] = (prev or 0) + pk if isinstance(pk, int) else prev
    if not placed and len(consignments) == 1:
        placed = {cid: {consignments[0]["transport_document"]: None} for cid in by_id}
    out: list[dict[str, Any]] = []
    for cid, docs in placed.items():
        for doc, pk in docs.items():
            out.append(_equipment_record(by_id.get(cid) or {"container_id": cid}, head, doc, pk))
    for e in equipment:
        if not e["container_id"] or e["container_id"] not in placed:
            out.append(_equipment_record(e, head, None, None))
    return out


def _equipment_record(
    e: dict[str, Any], head: dict[str, Any], doc: str | None, packages: Any
) -> dict[str, Any]:
    return {
        "manifest_id": head["manifest_id"],
        "transport_document": doc,
        "container_id": e.get("container_id"),
        "equipment_type": e.get("equipment_type"),
        "size_type": e.get("size_type"),
        "full_empty": e.get("full_empty"),
        "supplier": e.get("supplier"),
        "seals": v.join(e.get("_seals") or []),
        "seal_party": e.get("seal_party"),
        "packages": packages,
        "gross_mass_kg": e.get("gross_mass_kg"),
        "tare_mass_kg": e.get("tare_mass_kg"),
        "temperature_c": e.get("temperature_c"),
    }
