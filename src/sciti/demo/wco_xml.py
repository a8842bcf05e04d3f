"""Declarations lodged through the EDI channel: one WCO DEC XML message (DMS profile) per file.

The layout follows the real DMS sample declarations (MetaData envelope, Declaration, GoodsShipment,
GovernmentAgencyGoodsItem ...) and every file validates against the WCO DEC 2 DMS schemas. Built
as text rather than through a DOM: a large world writes tens of thousands of these.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa

from sciti.demo.catalogue import PartyForms
from sciti.demo.decl_feeds import derived, party_ids
from sciti.demo.declarations import DeclChunk
from sciti.demo.writers import Sinks

ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<md:MetaData xmlns:md="urn:wco:datamodel:WCO:DocumentMetaData-DMS:2" '
    'xmlns="urn:wco:datamodel:WCO:DEC-DMS:2" xmlns:p1="urn:wco:datamodel:WCO:Declaration_DS:DMS:2">\n'
    "  <md:WCODataModelVersionCode>3.6</md:WCODataModelVersionCode>\n"
    "  <md:WCOTypeName>DEC</md:WCOTypeName>\n"
    "  <md:ResponsibleCountryCode>HK</md:ResponsibleCountryCode>\n"
    "  <md:ResponsibleAgencyName>SCITI Demo Customs</md:ResponsibleAgencyName>\n"
    "  <md:AgencyAssignedCustomizationVersionCode>v2.1</md:AgencyAssignedCustomizationVersionCode>\n"
    "  <Declaration>\n"
)
ENVELOPE_CLOSE = "  </Declaration>\n</md:MetaData>\n"
ID_TYPE = {"sea": "10", "air": "40", "road": "30"}  # IMO number, flight number, registration plate
DOC_TYPE = {
    "sea": "705",
    "air": "740",
    "road": "730",
}  # UN/EDIFACT 1001: bill of lading, air waybill, road note


def _e(value: object) -> str:
    return escape(str(value))


class _Doc:
    """Indented XML text, one element per line: ``leaf`` for values, ``open``/``close`` for groups."""

    def __init__(self) -> None:
        self.parts: list[str] = [ENVELOPE_OPEN]
        self.depth = 2

    def leaf(self, tag: str, value: object, attrs: str = "") -> None:
        self.parts.append(f"{'  ' * self.depth}<{tag}{attrs}>{_e(value)}</{tag.split(' ')[0]}>\n")

    def open(self, tag: str) -> None:
        self.parts.append(f"{'  ' * self.depth}<{tag}>\n")
        self.depth += 1

    def close(self, tag: str) -> None:
        self.depth -= 1
        self.parts.append(f"{'  ' * self.depth}</{tag}>\n")

    def text(self) -> str:
        return "".join(self.parts) + ENVELOPE_CLOSE


def _party(doc: _Doc, tag: str, cols: dict[str, np.ndarray], role: str, k: int) -> None:
    doc.open(tag)
    doc.leaf("Name", cols[f"{role}_name"][k][:70])
    pid = cols[f"{role}_id"][k]
    # DMS caps party IDs at 17 characters (EORI); an 18-character Mainland credit code is left to
    # name and address, as a declarant would have to.
    if pid and len(pid) <= 17:
        doc.leaf("ID", pid)
    doc.open("Address")
    doc.leaf("CityName", cols[f"{role}_city"][k][:35])
    doc.leaf("CountryCode", cols[f"{role}_country"][k])
    doc.leaf("Line", cols[f"{role}_street"][k][:70])
    doc.close("Address")
    doc.close(tag)


def _item(doc: _Doc, it: dict[str, np.ndarray], r: int, cur: str, procedure: str) -> None:
    doc.open("GovernmentAgencyGoodsItem")
    doc.leaf("CustomsValueAmount", f"{it['customs_value'][r]:.2f}", ' currencyID="HKD"')
    doc.leaf("SequenceNumeric", int(it["item_number"][r]))
    doc.open("Commodity")
    doc.leaf("Description", it["description"][r])
    doc.open("Classification")
    doc.leaf("ID", it["hs_code"][r])
    doc.leaf("IdentificationTypeCode", "TSP")
    doc.close("Classification")
    doc.open("DutyTaxFee")
    doc.leaf("TaxRateNumeric", f"{it['duty_rate'][r]:g}")
    doc.leaf("TypeCode", "B00" if it["duty_rate"][r] else "A00")
    doc.open("Payment")
    doc.leaf("MethodCode", "E")
    doc.leaf("TaxAssessedAmount", f"{it['duty_amount'][r]:.2f}", ' currencyID="HKD"')
    doc.close("Payment")
    doc.close("DutyTaxFee")
    doc.open("GoodsMeasure")
    doc.leaf("GrossMassMeasure", f"{it['gross_mass_kg'][r]:.3f}")
    doc.leaf("NetNetWeightMeasure", f"{it['net_mass_kg'][r]:.3f}")
    doc.leaf("TariffQuantity", f"{it['quantity'][r]:.0f}")
    doc.close("GoodsMeasure")
    doc.open("InvoiceLine")
    doc.leaf("ItemChargeAmount", f"{it['item_price'][r]:.2f}", f' currencyID="{cur}"')
    doc.close("InvoiceLine")
    doc.close("Commodity")
    doc.open("CustomsValuation")
    doc.leaf("MethodCode", "1")
    doc.close("CustomsValuation")
    doc.open("GovernmentProcedure")
    doc.leaf("CurrentCode", procedure[:2])
    doc.leaf("PreviousCode", "00")
    doc.close("GovernmentProcedure")
    doc.open("Origin")
    doc.leaf("CountryCode", it["country_of_origin"][r])
    doc.leaf("TypeCode", "1")
    doc.close("Origin")
    doc.open("Packaging")
    doc.leaf("SequenceNumeric", 1)
    doc.leaf("QuantityQuantity", int(it["packages"][r]))
    doc.leaf("TypeCode", it["package_type"][r])
    doc.close("Packaging")
    doc.close("GovernmentAgencyGoodsItem")


def declaration_xml(chunk: DeclChunk, k: int, cols: dict[str, np.ndarray], items: np.ndarray) -> str:
    """The XML text of declaration ``k`` of the chunk; ``items`` are its item row numbers.

    Element order is the schema's (xs:sequence), which is why this reads top to bottom like it.
    """
    h, it = chunk.h, chunk.it
    cur = str(h["invoice_currency"][k])
    mode = str(h["mode"][k])
    doc = _Doc()
    doc.leaf("FunctionCode", "9")
    doc.leaf("FunctionalReferenceID", h["declaration_id"][k])
    doc.open("IssueDateTime")
    doc.leaf("p1:DateTimeString", cols["issue_304"][k], ' formatCode="304"')
    doc.close("IssueDateTime")
    doc.leaf("TypeCode", f"{h['declaration_type'][k]}A")
    doc.leaf("GoodsItemQuantity", int(h["goods_item_count"][k]))
    doc.leaf("DeclarationOfficeID", h["office_code"][k])
    doc.leaf("InvoiceAmount", f"{h['invoice_amount'][k]:.2f}", f' currencyID="{cur}"')
    doc.leaf("TotalGrossMassMeasure", f"{h['gross_mass_kg'][k]:.3f}")
    doc.leaf("TotalPackageQuantity", int(h["total_packages"][k]))
    doc.open("BorderTransportMeans")
    doc.leaf("ID", h["transport_means_id"][k])
    doc.leaf("IdentificationTypeCode", ID_TYPE[mode])
    doc.leaf("RegistrationNationalityCode", h["transport_nationality"][k])
    doc.leaf("ModeCode", h["mode_of_transport"][k])
    doc.close("BorderTransportMeans")
    doc.open("Declarant")
    doc.leaf("Name", cols["declarant_name"][k][:70])
    doc.leaf("ID", cols["declarant_id"][k])
    doc.close("Declarant")
    _party(doc, "Exporter", cols, "exporter", k)
    containers = [c for c in str(h["containers"][k]).split(",") if c]
    doc.open("GoodsShipment")
    doc.leaf("TransactionNatureCode", "1")
    doc.open("Consignment")
    doc.leaf("ContainerCode", 1 if containers else 0)
    doc.open("GoodsLocation")
    doc.leaf("Name", h["office_code"][k])
    doc.leaf("TypeCode", "A")
    doc.open("Address")
    doc.leaf("TypeCode", "U")
    doc.leaf("CountryCode", "HK")
    doc.close("Address")
    doc.close("GoodsLocation")
    doc.open("LoadingLocation")
    doc.leaf("ID", h["loading_location"][k])
    doc.close("LoadingLocation")
    for j, c in enumerate(containers, 1):
        doc.open("TransportEquipment")
        doc.leaf("SequenceNumeric", j)
        doc.leaf("ID", c)
        doc.close("TransportEquipment")
    doc.close("Consignment")
    doc.open("Destination")
    doc.leaf("CountryCode", h["country_of_destination"][k])
    doc.close("Destination")
    doc.open("ExportCountry")
    doc.leaf("ID", h["country_of_dispatch"][k])
    doc.close("ExportCountry")
    for r in items:
        _item(doc, it, int(r), cur, str(cols["procedure_code"][k]))
    _party(doc, "Importer", cols, "importer", k)
    doc.open("PreviousDocument")
    doc.leaf("CategoryCode", "Z")
    doc.leaf("ID", h["transport_document"][k])
    doc.leaf("TypeCode", DOC_TYPE[mode])
    doc.close("PreviousDocument")
    doc.open("TradeTerms")
    doc.leaf("ConditionCode", cols["delivery_terms"][k])
    doc.leaf("LocationID", h["loading_location"][k] if h["declaration_type"][k] == "EX" else "HKHKG")
    doc.close("TradeTerms")
    doc.close("GoodsShipment")
    return doc.text()


def write_xml(chunk: DeclChunk, forms: PartyForms, sinks: Sinks, folder: str = "declarations/xml") -> None:
    """One file per XML-channel declaration, named after its reference."""
    h = chunk.h
    sel = np.flatnonzero(h["xml"])
    if not len(sel):
        return
    cols: dict[str, np.ndarray] = dict(derived(chunk))
    digits = np.char.replace(
        np.char.replace(np.char.replace(cols["issue_datetime"], "-", ""), ":", ""), "T", ""
    )
    cols["issue_304"] = digits  # CCYYMMDDHHMMSSZ (format 304)
    for role in ("importer", "exporter", "declarant"):
        fi = pa.array(chunk.forms[role])
        cols[f"{role}_id"] = party_ids(chunk, forms, role)
        for col, arr in (
            ("name", forms.name),
            ("street", forms.street),
            ("city", forms.city),
            ("country", forms.country),
        ):
            cols[f"{role}_{col}"] = np.asarray(arr.take(fi).to_numpy(zero_copy_only=False))
    starts = np.concatenate([[0], np.cumsum(h["goods_item_count"])])
    root: Path = sinks.root / folder
    root.mkdir(parents=True, exist_ok=True)
    for k in sel:
        text = declaration_xml(chunk, int(k), cols, np.arange(starts[k], starts[k + 1]))
        (root / f"{h['declaration_id'][k]}.xml").write_text(text, encoding="utf-8")
    sinks.count("declarations.xml", len(sel))
