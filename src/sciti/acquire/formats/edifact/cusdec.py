"""CUSDEC (customs declaration) -> declaration, declaration_item and declaration_party records.

The message has passed the structure check. The header (before the first UNS) carries the
declaration, its parties (NAD), transport (TDT), documents (DOC), terms (TOD) and amounts (MOA/CUX);
each goods item is a CST group of the detail section (SG30 in D.96B, SG32 in D.16A) with its
description, origin, masses, packages, amounts and duties (TAX + MOA). Like national CUSDEC guides,
the first customs identity code (C246) of an item's CST is its commodity code and the second its
procedure; on the header CST, they are the declaration type and additional type.
"""

from __future__ import annotations

from typing import Any

from sciti.acquire.formats.edifact import values as v
from sciti.acquire.formats.edifact.cuscar import MappingError
from sciti.acquire.formats.edifact.syntax import Segment

_DECLARATION_TYPES = {"929": "IM", "830": "EX", "952": "TR", "914": "IM", "934": "EX"}
_ROLES = {
    "IM": "importer",
    "EX": "exporter",
    "DT": "declarant",
    "AE": "representative",
    "CZ": "consignor",
    "CN": "consignee",
    "CA": "carrier",
    "SE": "seller",
    "BY": "buyer",
    "NI": "notify",
    "FW": "forwarder",
}
_HEADER_TRIGGERS = frozenset({"RFF", "PAC", "TDT", "DOC", "NAD", "TOD", "MOA", "EFI"})
_TRANSPORT_DOCS = frozenset({"703", "704", "705", "714", "730", "740", "741"})


def _number_or_text(value: str, decimal: str) -> Any:
    return v.number(value, decimal) if value else None


def map_cusdec(segments: list[Segment], decimal: str = ".") -> dict[str, list[dict[str, Any]]]:
    """Records of one CUSDEC message (``segments`` = UNH..UNT, structure already checked)."""
    head: dict[str, Any] = {}
    parties: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    containers: list[str] = []
    part = "header"  # header -> detail (after the first UNS) -> summary (after the second)
    sub = ""  # the group the last trigger segment opened
    item: dict[str, Any] | None = None
    duty_total = 0.0
    duty_seen = False

    for seg in segments:
        tag = seg.tag
        if tag == "UNS":
            part = "detail" if part == "header" else "summary"
            sub, item = "", None
            continue
        if part == "header":
            sub = _header_segment(seg, head, parties, containers, sub, decimal)
        elif part == "detail":
            if tag == "CST":
                item = _new_item(seg, len(items) + 1)
                items.append(item)
                sub = "item"
            elif item is not None:
                sub = _item_segment(seg, item, sub, decimal)
        elif tag == "MOA" and sub == "tax" and seg.get(0, 0) in ("161", "55", "176"):
            amount = v.number(seg.get(0, 1), decimal)
            if isinstance(amount, float):
                duty_total += amount
                duty_seen = True
        elif tag == "TAX":
            sub = "tax"
        elif tag == "CNT" and seg.get(0, 0) == "5":
            head["goods_item_count"] = v.integer(seg.get(0, 1))

    decl_id = head.get("declaration_id")
    if not decl_id:
        bgm = next((s for s in segments if s.tag == "BGM"), None)
        raise MappingError("BGM has no document number (C106/1004): it is the declaration reference", bgm)
    version = head.setdefault("version", 1)
    head.setdefault("goods_item_count", len(items))
    if duty_seen and "duty_tax_total" not in head:
        head["duty_tax_total"] = round(duty_total, 4)
    head["container_ids"] = v.join(containers)
    for p in parties:
        p.update(declaration_id=decl_id, declaration_version=version)
    for it in items:
        it.update(declaration_id=decl_id, declaration_version=version)
        it.pop("_tax_seen", None)
    return {"declaration": [head], "declaration_item": items, "declaration_party": parties}


def _header_segment(
    seg: Segment,
    head: dict[str, Any],
    parties: list[dict[str, Any]],
    containers: list[str],
    sub: str,
    decimal: str,
) -> str:
    tag = seg.tag
    if tag == "BGM":
        code = seg.get(0, 0)
        head["declaration_type"] = _DECLARATION_TYPES.get(code, code or None)
        head["declaration_id"] = seg.get(1, 0) or None
        ver = seg.get(1, 1)
        if ver.isdigit():
            head["version"] = int(ver)
        head["function_code"] = seg.get(2) or None
    elif tag == "CST":
        if seg.get(1, 0):
            head["declaration_type"] = seg.get(1, 0)
        head["additional_type"] = seg.get(2, 0) or None
    elif tag in _HEADER_TRIGGERS and (tag != "RFF" or sub in ("", "rff")):
        # an RFF after a NAD belongs to the party (SG6), not to SG1
        return _header_group(seg, head, parties, decimal)
    elif tag == "LOC" and sub == "":
        q, code = seg.get(0), seg.get(1, 0)
        key = {
            "22": "office_code",
            "41": "office_code",
            "9": "loading_location",
            "35": "country_of_dispatch",
            "28": "country_of_destination",
            "36": "country_of_destination",
            "14": "goods_location",
        }.get(q)
        if key and code:
            head.setdefault(key, code)
    elif tag == "DTM" and sub == "":
        q, val, fmt = v.dtm(seg)
        if q == "137":
            head["issue_datetime"] = v.timestamp_value(val, fmt)
        elif q == "148":
            head["acceptance_date"] = v.date_value(val[:8], "102") if val else None
    elif tag == "MEA" and sub == "":
        m = v.mass_kg(seg)
        if m and m[0] in v.GROSS:
            head["gross_mass_kg"] = m[1]
    elif tag == "EQD":
        containers.append(seg.get(1, 0))
    elif tag == "CUX" and sub == "moa":
        if not head.get("invoice_currency"):
            head["invoice_currency"] = seg.get(0, 1) or None
        rate = seg.get(2)
        if rate:
            head["exchange_rate"] = _number_or_text(rate, decimal)
    return sub


def _header_group(seg: Segment, head: dict[str, Any], parties: list[dict[str, Any]], decimal: str) -> str:
    """Trigger segments of the header groups SG1-SG10; returns the group now open."""
    tag = seg.tag
    if tag == "PAC":
        packages = v.integer(seg.get(0))
        prev = head.get("total_packages")
        if isinstance(packages, int) and isinstance(prev, int):
            packages += prev
        if packages is not None:
            head["total_packages"] = packages
        return "pac"
    if tag == "TDT":
        if "mode_of_transport" not in head:
            head["mode_of_transport"] = seg.get(2, 0) or None
            head["transport_means_id"] = seg.get(7, 0) or seg.get(7, 3) or None
            head["transport_nationality"] = seg.get(7, 4) or None
        return "tdt"
    if tag == "DOC":
        if seg.get(0, 0) in _TRANSPORT_DOCS and not head.get("transport_document"):
            head["transport_document"] = seg.get(1, 0) or None
        return "doc"
    if tag == "NAD":
        code = seg.get(0)
        role = _ROLES.get(code, code.lower() or "party")
        p = v.party(seg)
        seq = 1 + sum(1 for q in parties if q["role"] == role)
        parties.append(
            {
                "role": role,
                "sequence": seq,
                "party_id": p["id"],
                "name": p["name"],
                "street": p["street"],
                "city": p["city"],
                "postcode": p["postcode"],
                "country": p["country"],
                "phone": None,
                "aeo_status": None,
            }
        )
        key = {"importer": "importer_id", "exporter": "exporter_id", "declarant": "declarant_id"}.get(role)
        if key and p["id"] and not head.get(key):
            head[key] = p["id"]
        return "nad"
    if tag == "TOD":
        head.setdefault("delivery_terms", seg.get(2, 0) or None)
        return "tod"
    if tag == "MOA":
        q, amount, currency = seg.get(0, 0), seg.get(0, 1), seg.get(0, 2)
        key = {"39": "invoice_amount", "40": "customs_value", "176": "duty_tax_total"}.get(q)
        if key and amount:
            head[key] = _number_or_text(amount, decimal)
            if key == "invoice_amount" and currency:
                head["invoice_currency"] = currency
        return "moa"
    return tag.lower()


_ITEM_TRIGGERS = frozenset(
    {"PAC", "MOA", "RFF", "DOC", "TOD", "GDS", "GIS", "GEI", "TAX", "QVR", "GIR", "IMD"}
)


def _new_item(cst: Segment, position: int) -> dict[str, Any]:
    number = v.integer(cst.get(0))
    return {
        "item_number": number if number is not None else position,
        "hs_code": cst.get(1, 0) or None,
        "procedure_code": cst.get(2, 0) or None,
        "description": None,
        "country_of_origin": None,
        "net_mass_kg": None,
        "gross_mass_kg": None,
        "packages": None,
        "package_type": None,
        "item_price": None,
        "currency": None,
        "customs_value": None,
        "duty_rate": None,
        "tax_type": None,
        "duty_amount": None,
        "container_id": None,
        "_tax_seen": False,
    }


def _item_segment(seg: Segment, item: dict[str, Any], sub: str, decimal: str) -> str:
    tag = seg.tag
    if tag in _ITEM_TRIGGERS and not (tag == "MOA" and sub == "tax"):
        sub = tag.lower()  # a new group of the goods item opens (a MOA after TAX stays with the tax)
    if tag == "FTX" and sub == "item" and seg.get(0) in ("AAA", ""):
        text = " ".join(p for p in (seg.elements[3] if len(seg.elements) > 3 else []) if p)
        item["description"] = f"{item['description']} {text}" if item["description"] else text
    elif tag == "LOC" and sub == "item" and seg.get(0) == "27":
        item["country_of_origin"] = seg.get(1, 0) or None
    elif tag == "MEA" and sub == "item":
        m = v.mass_kg(seg)
        if m and m[0] in v.GROSS:
            item["gross_mass_kg"] = m[1]
        elif m and m[0] in v.NET:
            item["net_mass_kg"] = m[1]
    elif tag == "PAC":
        packages = v.integer(seg.get(0))
        if isinstance(packages, int) and isinstance(item["packages"], int):
            packages += item["packages"]
        item["packages"] = packages
        item["package_type"] = item["package_type"] or seg.get(2, 0) or None
    elif tag == "MOA" and sub == "moa":
        q, amount = seg.get(0, 0), seg.get(0, 1)
        key = {"146": "item_price", "77": "item_price", "203": "item_price", "40": "customs_value"}.get(q)
        if key and amount:
            item[key] = _number_or_text(amount, decimal)
            if key == "item_price" and seg.get(0, 2):
                item["currency"] = seg.get(0, 2)
    elif tag == "CUX" and sub == "moa" and not item["currency"]:
        item["currency"] = seg.get(0, 1) or None
    elif tag == "TAX":
        if not item["_tax_seen"]:
            item["_tax_seen"] = True
            item["tax_type"] = seg.get(1, 0) or None
            rate = seg.get(4, 3)  # C243/5278 duty or tax rate
            item["duty_rate"] = _number_or_text(rate, decimal)
    elif tag == "MOA" and sub == "tax" and seg.get(0, 0) in ("161", "55"):
        amount = v.number(seg.get(0, 1), decimal)
        prev = item["duty_amount"]
        item["duty_amount"] = (
            round(prev + amount, 4)
            if isinstance(prev, float) and isinstance(amount, float)
            else (amount if prev is None else prev)
        )
    elif tag == "GIN" and seg.get(0) in ("BN", "CN", "AW") and not item["container_id"]:
        item["container_id"] = seg.get(1, 0) or None
    return sub
