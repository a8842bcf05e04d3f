"""Map one schema-valid WCO DEC (DMS profile) ``Declaration`` element to canonical records.

The input has already passed the XSD, so structure and cardinalities are known; this module only
picks values and shapes them into the field names of the ``declaration``, ``declaration_item`` and
``declaration_party`` record kinds. Values stay strings (the runner coerces and validates them
with the model); sums and unit conversions are done in ``Decimal`` so no precision is lost.

Speed: instead of one ElementPath search per field (slow in lxml), the header and each goods item
are indexed once by their relative element path ("GoodsShipment/Importer/ID" -> elements), and
fields are dictionary look-ups.

Versioning (see docs/decisions/0006): an original (FunctionCode 9) is version 1. A DMS additional
message (FunctionCode 13) carries the MRN of the declaration it changes: an amendment (TypeCode
COR) becomes version 2 and a cancellation (TypeCode INV) version 3, keyed by that MRN: provisional
numbers, which the runner replaces by the next version in the stored history (decision 0114).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

NS = "urn:wco:datamodel:WCO:DEC-DMS:2"
_NS_PREFIX = f"{{{NS}}}"
_ITEM = "GoodsShipment/GovernmentAgencyGoodsItem"

# DMS additional-message types (TypeCode when FunctionCode is 13) -> canonical function code
# (UN/EDIFACT 1225 as the model documents it) and the version rule described above.
ADDITIONAL_MESSAGES = {"COR": ("5", 2), "INV": ("13", 3)}
ORIGINAL_VERSION = 1

# Previous-document type codes that are transport documents (UN/EDIFACT 1001 as used by the
# Union Customs Code: bills of lading, CIM/CMR notes, air waybills, manifests, dispatch notes).
TRANSPORT_DOCUMENT_TYPES = frozenset(
    {"703", "704", "705", "710", "714", "720", "722", "730", "740", "741", "750", "760", "785", "787"}
)

# Mass units we convert to kilograms (UN/ECE Rec 20); any other unit is passed through as is.
KG_FACTORS = {"KGM": Decimal(1), "TNE": Decimal(1000), "GRM": Decimal("0.001")}

# XML party element (path from Declaration) -> canonical role (declaration_party.yaml), in order.
HEADER_PARTIES = (
    ("GoodsShipment/Importer", "importer"),
    ("Exporter", "exporter"),
    ("Declarant", "declarant"),
    ("GoodsShipment/Consignor", "consignor"),
    ("Consignment/Consignor", "consignor"),
    ("GoodsShipment/Consignee", "consignee"),
    ("Consignment/Carrier", "carrier"),
    ("GoodsShipment/Seller", "seller"),
    ("GoodsShipment/Buyer", "buyer"),
)
ITEM_PARTIES = (
    ("Consignor", "consignor"),
    ("Consignee", "consignee"),
    ("Seller", "seller"),
    ("Buyer", "buyer"),
)


def _local(tag: str) -> str:
    return tag[len(_NS_PREFIX) :] if tag.startswith(_NS_PREFIX) else tag.rpartition("}")[2]


def clean(el: etree._Element | None) -> str | None:
    """Stripped text of ``el``, or None when absent or blank."""
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def child_text(el: etree._Element, name: str) -> str | None:
    """Text of the first child named ``name`` (local name) of a small group element."""
    tag = _NS_PREFIX + name
    for child in el:
        if child.tag == tag:
            return clean(child)
    return None


# Groups no canonical field comes from: their subtrees are not indexed (a third of the elements).
SKIPPED_GROUPS = frozenset(
    {"AdditionalDocument", "AdditionalInformation", "ObligationGuarantee", "ValuationAdjustment", "Amendment"}
)
# Repeated small groups read with child_text(): indexed themselves, their children are not.
LEAF_GROUPS = frozenset(
    {
        "AEOMutualRecognitionParty",
        "AuthorisationHolder",
        "Classification",
        "Communication",
        "CurrencyExchange",
        "DutyTaxFee",
        "GovernmentProcedure",
        "Origin",
        "Packaging",
        "PreviousDocument",
        "TransportEquipment",
    }
)
# Clark tag -> local name; tags come from schema-valid documents, so the set is bounded.
_NAMES: dict[str, str] = {}


class Index:
    """Elements under ``root`` by relative path of local names, e.g. 'Commodity/Classification'.

    ``stop`` names paths whose subtrees are not indexed (the header index skips goods items,
    which get their own index); groups in SKIPPED_GROUPS are not indexed at all, and groups in
    LEAF_GROUPS are indexed without their children (read them with ``child_text``).
    """

    __slots__ = ("paths",)

    def __init__(self, root: etree._Element | None, stop: frozenset[str] = frozenset()) -> None:
        self.paths: dict[str, list[etree._Element]] = {}
        if root is not None:
            self._walk(root, "", stop)

    def _walk(self, el: etree._Element, prefix: str, stop: frozenset[str]) -> None:
        paths, names = self.paths, _NAMES
        for child in el:
            tag = child.tag
            name = names.get(tag)
            if name is None:
                if not isinstance(tag, str):
                    continue
                name = names[tag] = _local(tag)
            if name in SKIPPED_GROUPS:
                continue
            path = prefix + name
            found = paths.get(path)
            if found is None:
                paths[path] = [child]
            else:
                found.append(child)
            if len(child) and path not in stop and name not in LEAF_GROUPS:
                self._walk(child, path + "/", stop)

    def all(self, path: str) -> list[etree._Element]:
        return self.paths.get(path, [])

    def el(self, path: str) -> etree._Element | None:
        found = self.paths.get(path)
        return found[0] if found else None

    def text(self, path: str) -> str | None:
        """Text of the first element at ``path`` that has any."""
        for el in self.paths.get(path, ()):
            value = el.text  # clean() inlined: this is the hottest call of the mapping
            if value is not None:
                value = value.strip()
                if value:
                    return value
        return None


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _kg(el: etree._Element | None) -> str | None:
    """A mass measure in kilograms (unitCode KGM is the DMS default)."""
    raw = clean(el)
    if raw is None or el is None:
        return None
    factor = KG_FACTORS.get(el.get("unitCode") or "KGM")
    if factor is None or factor == 1:
        return raw
    number = _decimal(raw)
    return raw if number is None else str(number * factor)


def sum_amounts(values: list[str | None]) -> str | None:
    """Sum of decimal strings; None when any is missing (a partial total would mislead)."""
    numbers = [_decimal(v) for v in values]
    known = [n for n in numbers if n is not None]
    if not numbers or len(known) != len(numbers):
        return None
    return str(sum(known, Decimal(0)))


def wco_datetime(el: etree._Element | None, *, date_only: bool = False) -> str | None:
    """A DateTimeString to ISO 8601. formatCode 102 = CCYYMMDD, 304 = CCYYMMDDHHMMSS + zone.

    The zone is 'Z' or a signed offset in hours (+01) or hours and minutes (+0100). An
    unrecognised value is returned unchanged so the model validator names it.
    """
    if el is None:
        return None
    # DateTimeString lives in the data-set namespace (Declaration_DS); match it by local name.
    node = next((c for c in el if isinstance(c.tag, str) and c.tag.endswith("}DateTimeString")), None)
    raw = clean(node) if node is not None else clean(el)
    if not raw:
        return None
    if len(raw) >= 8 and raw[:8].isdigit():
        date = f"{raw[:4]}-{raw[4:6]}-{raw[6:8]}"
        if date_only:
            return date
        rest = raw[8:]
        if not rest:
            return f"{date}T00:00:00Z"
        if len(rest) >= 6 and rest[:6].isdigit():
            clock = f"{rest[:2]}:{rest[2:4]}:{rest[4:6]}"
            zone = rest[6:]
            if zone in ("", "Z"):
                return f"{date}T{clock}Z"
            if zone[0] in "+-" and zone[1:].isdigit() and len(zone) in (3, 5):
                return f"{date}T{clock}{zone[:3]}:{zone[3:5] or '00'}"
    return raw


def commodity_code(classifications: list[etree._Element]) -> str | None:
    """The commodity code as the DMS profile builds it: CN8 (TSP/CN) followed by TARIC (TRC).

    TARIC and national additional codes (TRA, GN, NAN) are measures, not part of the code.
    """
    parts: dict[str, str] = {}
    for cls in classifications:
        kind, value = child_text(cls, "IdentificationTypeCode"), child_text(cls, "ID")
        if kind and value and kind not in parts:
            parts[kind] = value
    base = parts.get("TSP") or parts.get("CN") or parts.get("HS")
    if base is None:
        return None
    taric = parts.get("TRC")
    return base + taric if taric and len(base) == 8 else base


def procedure(item: Index) -> str | None:
    """Requested + previous procedure (DE 1/10, 4 digits), skipping additional procedures (DE 1/11)."""
    for proc in item.all("GovernmentProcedure"):
        current = child_text(proc, "CurrentCode")
        if current and len(current) == 2:
            return current + (child_text(proc, "PreviousCode") or "")
    return None


def _origin(item: Index) -> tuple[str | None, str | None]:
    """Country of origin and its type: non-preferential (1) before preferential (2)."""
    origins = [(child_text(o, "TypeCode") or "", child_text(o, "CountryCode")) for o in item.all("Origin")]
    origins = [o for o in origins if o[1]]
    if not origins:
        return None, None
    origins.sort(key=lambda o: o[0] != "1")
    return origins[0][1], origins[0][0] or None


def _duties(item: Index) -> dict[str, str | None]:
    """Preference, main tax type and rate, and the total assessed over all DutyTaxFee lines."""
    out: dict[str, str | None] = dict.fromkeys(("preference_code", "tax_type", "duty_rate", "duty_amount"))
    assessed: list[str] = []
    for fee in item.all("Commodity/DutyTaxFee"):
        out["preference_code"] = out["preference_code"] or child_text(fee, "DutyRegimeCode")
        if out["tax_type"] is None and child_text(fee, "TypeCode"):
            out["tax_type"] = child_text(fee, "TypeCode")
            out["duty_rate"] = child_text(fee, "TaxRateNumeric")
        for payment in fee:
            if payment.tag == _NS_PREFIX + "Payment":
                amount = child_text(payment, "TaxAssessedAmount")
                if amount:
                    assessed.append(amount)
    if assessed:
        out["duty_amount"] = sum_amounts(list(assessed))
    return out


def map_item(item: Index, position: int) -> dict[str, Any]:
    """One GovernmentAgencyGoodsItem (indexed) -> declaration_item fields (without parent keys)."""
    charge = item.el("Commodity/InvoiceLine/ItemChargeAmount")
    tariff_qty = item.el("Commodity/GoodsMeasure/TariffQuantity")
    packages = [child_text(p, "QuantityQuantity") for p in item.all("Packaging")]
    country, origin_type = _origin(item)
    record: dict[str, Any] = {
        "item_number": item.text("SequenceNumeric") or str(position),
        "hs_code": commodity_code(item.all("Commodity/Classification")),
        "description": item.text("Commodity/Description"),
        "country_of_origin": country,
        "origin_indicator": origin_type,
        "procedure_code": procedure(item),
        "net_mass_kg": _kg(item.el("Commodity/GoodsMeasure/NetNetWeightMeasure")),
        "gross_mass_kg": _kg(item.el("Commodity/GoodsMeasure/GrossMassMeasure")),
        "quantity": clean(tariff_qty),
        "quantity_unit": tariff_qty.get("unitCode") if tariff_qty is not None else None,
        "packages": sum_amounts(packages) if packages else None,
        "package_type": _first_child_text(item.all("Packaging"), "TypeCode"),
        "item_price": clean(charge),
        "currency": charge.get("currencyID") if charge is not None else None,
        "customs_value": item.text("CustomsValueAmount"),
        "valuation_method": item.text("CustomsValuation/MethodCode"),
        "container_id": _first_child_text(item.all("Commodity/TransportEquipment"), "ID"),
    }
    record.update(_duties(item))
    return record


def _party(index: Index, path: str, role: str) -> dict[str, Any] | None:
    """A party element (ID, Name, Address, Communication) at ``path`` -> declaration_party fields."""
    if index.el(path) is None:
        return None
    phone = None
    for comm in index.all(f"{path}/Communication"):
        if (child_text(comm, "TypeCode") or "TE") == "TE":
            phone = child_text(comm, "ID")
            break
    party = {
        "role": role,
        "party_id": index.text(f"{path}/ID"),
        "name": index.text(f"{path}/Name"),
        "street": index.text(f"{path}/Address/Line"),
        "city": index.text(f"{path}/Address/CityName"),
        "postcode": index.text(f"{path}/Address/PostcodeID"),
        "country": index.text(f"{path}/Address/CountryCode"),
        "phone": phone,
    }
    if not (party["party_id"] or party["name"]):
        return None  # a role element with only codes names nobody
    return party


def _aeo_status(header: Index, items: list[Index]) -> dict[str, str]:
    """AEO status by party id: from AEO authorisations (AEOC/AEOS/AEOF) and mutual recognition."""
    status: dict[str, str] = {}
    for holder in header.all("AuthorisationHolder"):
        category, pid = child_text(holder, "CategoryCode"), child_text(holder, "ID")
        if pid and category and category.startswith("AEO"):
            status.setdefault(pid, category)
    groups = [header.all("GoodsShipment/AEOMutualRecognitionParty")]
    groups += [item.all("AEOMutualRecognitionParty") for item in items]
    for group in groups:
        for party in group:
            pid, role = child_text(party, "ID"), child_text(party, "RoleCode")
            if pid and role:
                status.setdefault(pid, role)
    return status


def map_parties(header: Index, items: list[Index]) -> list[dict[str, Any]]:
    """Every party named on the declaration, header level first, then item level (deduplicated)."""
    parties: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()

    def add(party: dict[str, Any] | None) -> None:
        if party is not None:
            ident = (party["role"], party["party_id"], party["name"], party["street"])
            if ident not in seen:
                seen.add(ident)
                parties.append(party)

    for path, role in HEADER_PARTIES:
        add(_party(header, path, role))
    # DE 3/20: the representative is the Agent; without an identity of its own (only the status
    # code 2 direct / 3 indirect representation) the declarant acts as the representative.
    if header.el("Agent") is not None:
        rep = _party(header, "Agent", "representative")
        if rep is None and header.text("Agent/FunctionCode") in ("2", "3"):
            rep = _party(header, "Declarant", "representative")
        add(rep)
    for item in items:
        for path, role in ITEM_PARTIES:
            add(_party(item, path, role))
    aeo = _aeo_status(header, items)
    counters: dict[str, int] = {}
    for party in parties:
        counters[party["role"]] = counters.get(party["role"], 0) + 1
        party["sequence"] = str(counters[party["role"]])
        party["aeo_status"] = aeo.get(party["party_id"] or "")
    return parties


def _transport_document(header: Index, items: list[Index]) -> str | None:
    groups = [header.all("GoodsShipment/PreviousDocument")] + [item.all("PreviousDocument") for item in items]
    for group in groups:
        for doc in group:
            if child_text(doc, "TypeCode") in TRANSPORT_DOCUMENT_TYPES and child_text(doc, "ID"):
                return child_text(doc, "ID")
    return None


def _first_child_text(groups: list[etree._Element], name: str) -> str | None:
    for group in groups:
        value = child_text(group, name)
        if value:
            return value
    return None


def _payment_method(items: list[Index]) -> str | None:
    """DE 4/8 method of payment (e.g. E deferment) of the first tax line that states one."""
    for item in items:
        for fee in item.all("Commodity/DutyTaxFee"):
            for payment in fee:
                if payment.tag == _NS_PREFIX + "Payment":
                    method = child_text(payment, "MethodCode")
                    if method:
                        return method
    return None


def _first(items: list[Index], path: str) -> str | None:
    for item in items:
        value = item.text(path)
        if value:
            return value
    return None


def _same(records: list[dict[str, Any]], key: str) -> str | None:
    """The value every record shares for ``key``, else None."""
    values = {record.get(key) for record in records}
    return values.pop() if len(values) == 1 else None


def identity(header: Index) -> tuple[str | None, int, str | None, str | None, str | None]:
    """(declaration_id, version, function_code, declaration_type, additional_type) of a message."""
    function = header.text("FunctionCode")
    type_code = header.text("TypeCode") or ""
    # The MRN (customs' number) when the message carries one, else the trader's LRN.
    declaration_id = header.text("ID") or header.text("FunctionalReferenceID")
    if function == "13" and type_code in ADDITIONAL_MESSAGES:
        canonical, version = ADDITIONAL_MESSAGES[type_code]
        return declaration_id, version, canonical, None, None
    return declaration_id, ORIGINAL_VERSION, function, type_code[:2] or None, type_code[2:] or None


def map_declaration(decl: etree._Element) -> dict[str, list[dict[str, Any]]]:
    """A schema-valid Declaration element -> {"declaration": [...], "declaration_item": [...], ...}.

    Additional messages (amendments) list only what changes; their goods items are partial and
    would fail the item kind's mandatory fields, so only complete items (with a commodity code)
    are emitted for them. The full message stays in ``raw`` for the later merge.
    """
    header = Index(decl, stop=frozenset({_ITEM}))
    item_indexes = [Index(el) for el in header.all(_ITEM)]
    declaration_id, version, function_code, decl_type, add_type = identity(header)
    items = [map_item(item, i) for i, item in enumerate(item_indexes, start=1)]
    if version != ORIGINAL_VERSION:
        items = [item for item in items if item["hs_code"]]

    invoice = header.el("InvoiceAmount")
    containers = list(
        dict.fromkeys(
            v
            for v in (
                child_text(eq, "ID") for eq in header.all("GoodsShipment/Consignment/TransportEquipment")
            )
            if v
        )
    )
    record: dict[str, Any] = {
        "declaration_id": declaration_id,
        "version": str(version),
        "function_code": function_code,
        "declaration_type": decl_type,
        "additional_type": add_type,
        "issue_datetime": wco_datetime(header.el("IssueDateTime")),
        "acceptance_date": wco_datetime(header.el("AcceptanceDateTime"), date_only=True),
        "office_code": header.text("DeclarationOfficeID") or header.text("PresentationOffice/ID"),
        "procedure_code": next((i["procedure_code"] for i in items if i["procedure_code"]), None),
        "mode_of_transport": header.text("BorderTransportMeans/ModeCode")
        or header.text("GoodsShipment/Consignment/ArrivalTransportMeans/ModeCode"),
        "transport_means_id": header.text("BorderTransportMeans/ID")
        or header.text("GoodsShipment/Consignment/ArrivalTransportMeans/ID"),
        "transport_nationality": header.text("BorderTransportMeans/RegistrationNationalityCode"),
        "country_of_dispatch": header.text("GoodsShipment/ExportCountry/ID")
        or _first(item_indexes, "ExportCountry/ID"),
        "country_of_destination": header.text("GoodsShipment/Destination/CountryCode")
        or _first(item_indexes, "Destination/CountryCode"),
        "loading_location": header.text("GoodsShipment/Consignment/LoadingLocation/ID"),
        "goods_location": header.text("GoodsShipment/Consignment/GoodsLocation/Name")
        or header.text("GoodsShipment/Consignment/GoodsLocation/ID"),
        "delivery_terms": header.text("GoodsShipment/TradeTerms/ConditionCode"),
        "payment_type": _payment_method(item_indexes),
        "invoice_currency": invoice.get("currencyID") if invoice is not None else _same(items, "currency"),
        "invoice_amount": clean(invoice),
        "exchange_rate": _first_child_text(header.all("CurrencyExchange"), "RateNumeric"),
        "customs_value": sum_amounts([i["customs_value"] for i in items]) if items else None,
        "duty_tax_total": sum_amounts([i["duty_amount"] for i in items if i["duty_amount"]]) or None,
        "gross_mass_kg": _kg(header.el("TotalGrossMassMeasure"))
        or (sum_amounts([i["gross_mass_kg"] for i in items]) if items else None),
        "total_packages": header.text("TotalPackageQuantity"),
        "goods_item_count": header.text("GoodsItemQuantity")
        or (str(len(item_indexes)) if version == ORIGINAL_VERSION else None),
        "importer_id": header.text("GoodsShipment/Importer/ID"),
        "exporter_id": header.text("Exporter/ID"),
        "declarant_id": header.text("Declarant/ID"),
        "courier_id": None,
        "transport_document": _transport_document(header, item_indexes),
        "container_ids": ",".join(containers) or None,
    }
    parent = {"declaration_id": declaration_id, "declaration_version": str(version)}
    return {
        "declaration": [record],
        "declaration_item": [{**parent, **item} for item in items],
        "declaration_party": [{**parent, **p} for p in map_parties(header, item_indexes)],
    }
