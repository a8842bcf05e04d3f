"""Map a WCO RES customs response (a DMS notification, such as the tax calculation DMSTAX) to the
``customs_response`` and ``customs_response_duty`` record kinds (docs/decisions/0122).

No schema for DMS notifications is published with the DEC set, and real notifications come with
or without a namespace, so elements are matched by local name and this module checks what a
response must hold to be stored: its own identifier and the MRN of the declaration it answers.
A missing one is named in the reason. Amounts and codes stay strings; the model's validator checks
them, as for declarations.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from sciti.acquire.formats.wco_map import clean, sum_amounts, wco_datetime

RESPONSE = "Response"
METADATA = "MetaData"


def local(tag: Any) -> str:
    """Local name of an element tag ('' for comments and processing instructions)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next((c for c in el if local(c.tag) == name), None)


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if local(c.tag) == name]


def _text(el: etree._Element | None, *path: str) -> str | None:
    for name in path:
        el = _child(el, name)
    return clean(el)


def find_responses(root: etree._Element) -> list[etree._Element]:
    """The Response elements of a RES message: under a MetaData root, as a bare root, or under each
    MetaData of a transport envelope."""
    name = local(root.tag)
    if name == RESPONSE:
        return [root]
    if name == METADATA:
        return _children(root, RESPONSE)
    return [r for md in root.iter() if local(md.tag) == METADATA for r in _children(md, RESPONSE)]


def map_response(response: etree._Element) -> dict[str, list[dict[str, Any]]] | tuple[str, str]:
    """Records of one response, or (field, reason) when it cannot be stored."""
    response_id = _text(response, "FunctionalReferenceID")
    if response_id is None:
        return "FunctionalReferenceID", "the customs response has no FunctionalReferenceID, its identifier"
    declaration = _child(response, "Declaration")
    mrn = _text(declaration, "ID")
    if mrn is None:
        return (
            "Declaration/ID",
            "the customs response names no declaration MRN (Declaration/ID), so it cannot be linked "
            "to the declaration it answers",
        )
    lines = list(_duty_lines(response_id, mrn, declaration))
    currencies = {line["currency"] for line in lines}
    one_currency = len(currencies) == 1 and None not in currencies
    header = {
        "response_id": response_id,
        "declaration_id": mrn,
        "lrn": _text(declaration, "FunctionalReferenceID"),
        "declaration_version": _text(declaration, "VersionID"),
        "function_code": _text(response, "FunctionCode"),
        "status_code": _text(response, "Status", "NameCode"),
        "issue_datetime": wco_datetime(_child(_child(response, "IssueDateTime"), "DateTimeString")),
        # A total over several currencies, or with a line missing, would mislead: left empty.
        "duty_tax_total": sum_amounts([line["assessed_amount"] for line in lines]) if one_currency else None,
        "payment_total": sum_amounts([line["payment_amount"] for line in lines]) if one_currency else None,
        "currency": currencies.pop() if one_currency else None,
        "duty_line_count": str(len(lines)),
    }
    return {"customs_response": [header], "customs_response_duty": lines}


def _duty_lines(response_id: str, mrn: str, declaration: etree._Element | None) -> Any:
    for item in _children(_child(declaration, "GoodsShipment"), "GovernmentAgencyGoodsItem"):
        number = _text(item, "SequenceNumeric")
        fees = [f for commodity in _children(item, "Commodity") for f in _children(commodity, "DutyTaxFee")]
        for line_number, fee in enumerate(fees, start=1):
            base, deduct = _child(fee, "AdValoremTaxBaseAmount"), _child(fee, "DeductAmount")
            payment = _child(fee, "Payment")
            assessed, paid = _child(payment, "TaxAssessedAmount"), _child(payment, "PaymentAmount")
            amounts = [el for el in (assessed, paid, base, deduct) if el is not None]
            yield {
                "response_id": response_id,
                "item_number": number,
                "line_number": str(line_number),
                "declaration_id": mrn,
                "tax_type": _text(fee, "TypeCode"),
                "duty_regime_code": _text(fee, "DutyRegimeCode"),
                "tax_base": clean(base),
                "deduct_amount": clean(deduct),
                "tax_rate": _text(fee, "TaxRateNumeric"),
                "assessed_amount": clean(assessed),
                "payment_amount": clean(paid),
                "currency": next((c for el in amounts if (c := (el.get("currencyID") or "").strip())), None),
            }
