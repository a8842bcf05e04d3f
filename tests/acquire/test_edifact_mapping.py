"""CUSCAR and CUSDEC mapped to canonical records: every record passes the model's own validation
(HS 2022, UN/LOCODE, ISO 3166/4217, ISO 6346 check digits) and carries the right values and links.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from sciti.acquire.formats.edifact import read
from sciti.acquire.items import Parsed
from sciti.model import get_kind
from sciti.model.codelists import load_codelists
from sciti.model.validate import validate_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edifact"


@pytest.fixture
def ctx(settings):
    return types.SimpleNamespace(settings=settings)


def parsed(ctx, name: str) -> list[Parsed]:
    items = list(read((FIXTURES / name).read_bytes(), unit=name, options={}, ctx=ctx))
    assert all(isinstance(i, Parsed) for i in items)
    return items


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("cuscar_d96b.edi", ("manifest", "consignment", "transport_equipment")),
        ("cuscar_d16a.edi", ("manifest", "consignment", "transport_equipment")),
        ("cusdec_d96b.edi", ("declaration", "declaration_item", "declaration_party")),
        ("cusdec_d16a.edi", ("declaration", "declaration_item", "declaration_party")),
    ],
)
def test_records_pass_the_model(ctx, settings, name, kinds):
    codelists = load_codelists(settings.codelists_dir)
    for item in parsed(ctx, name):
        assert tuple(item.records) == kinds
        assert len(item.records[kinds[0]]) == 1, "one parent record per message"
        for kind_name, records in item.records.items():
            kind = get_kind(kind_name)
            for record in records:
                _, problems = validate_record(kind, record, codelists)
                assert problems == [], (kind_name, problems)


@pytest.mark.parametrize(
    ("name", "message", "kind", "index", "expected"),
    [
        (
            "cuscar_d96b.edi",
            0,
            "manifest",
            0,
            {
                "manifest_id": "MAN2611200001",
                "conveyance_reference": "0123E",
                "mode_of_transport": "1",
                "transport_means_id": "9811000",
                "transport_means_name": "EVER GIVEN",
                "carrier_id": "EGLV",
                "departure_location": "CNSHA",
                "arrival_location": "TWKHH",
                "next_location": "TWKEL",
                "arrival_datetime": "2026-11-20T14:00:00+00:00",
                "consignment_count": 2,
                "equipment_count": 3,
                "reporting_party_name": "EVERGREEN MARINE CORP",
            },
        ),
        (
            "cuscar_d96b.edi",
            0,
            "consignment",
            0,
            {
                "transport_document": "EGLV142600012345",
                "document_type": "bill_of_lading",
                "packages": 1500,
                "gross_mass_kg": 12000.5,
                "hs_code": "851713",
                "hs_codes": "851713,847130",
                "consignee_id": "12345678",
                "notify_party_name": "CHEN MEI-LING",
                "delivery_location": "TWTPE",
                "goods_description": "SMARTPHONES | PORTABLE COMPUTERS",
                "container_ids": "MSCU1234566",
            },
        ),
        (
            "cuscar_d96b.edi",
            1,
            "consignment",
            1,
            {
                "transport_document": "HAWB7782",
                "document_type": "house_air_waybill",
                "master_document": "29712345675",
                "consignor_name": "WANG XIAO-MING",
                "sequence": 2,
            },
        ),
        (
            "cuscar_d96b.edi",
            1,
            "manifest",
            0,
            {
                "mode_of_transport": "4",
                "departure_datetime": "2026-11-19T01:30:00+00:00",
                "arrival_datetime": "2026-11-20T05:40:00+00:00",
                "arrival_location": "TWTPE",
            },
        ),
        ("cuscar_d16a.edi", 0, "manifest", 0, {"customs_office": "TWKHH", "transport_nationality": "DK"}),
        (
            "cuscar_d16a.edi",
            0,
            "consignment",
            0,
            {
                "goods_description": "WOODEN DINING TABLES+CHAIRS (FLAT-PACKED) | MEN'S COTTON T-SHIRTS",
                "consignee_name": "KAOHSIUNG LIVING CO, LTD",
                "receipt_location": "MYPKG",
            },
        ),
        ("cuscar_d16a.edi", 0, "consignment", 1, {"dangerous_goods": "3481", "hs_code": "850760"}),
        (
            "cuscar_d16a.edi",
            0,
            "transport_equipment",
            0,
            {
                "container_id": "MAEU6044127",
                "transport_document": "MAEU261100998",
                "size_type": "45G1",
                "seals": "ML-DK2261733,TWC0099812",
                "seal_party": "CA",
                "packages": 430,
                "gross_mass_kg": 24870.0,
            },
        ),
        (
            "cusdec_d96b.edi",
            0,
            "declaration",
            0,
            {
                "declaration_id": "TW26KH0000123",
                "version": 1,
                "declaration_type": "IM",
                "additional_type": "A",
                "office_code": "TWKHH1",
                "invoice_amount": 250000.0,
                "invoice_currency": "USD",
                "exchange_rate": 32.15,
                "delivery_terms": "CIF",
                "transport_document": "EGLV142600012345",
                "importer_id": "12345678",
                "declarant_id": "87654321",
                "duty_tax_total": 401875.0,
                "container_ids": "MSCU1234566",
                "goods_item_count": 2,
                "total_packages": 1200,
            },
        ),
        (
            "cusdec_d96b.edi",
            0,
            "declaration_item",
            0,
            {
                "declaration_id": "TW26KH0000123",
                "declaration_version": 1,
                "item_number": 1,
                "hs_code": "851713",
                "procedure_code": "4000",
                "country_of_origin": "CN",
                "net_mass_kg": 6500.0,
                "gross_mass_kg": 7200.0,
                "packages": 900,
                "item_price": 180000.0,
                "currency": "USD",
                "tax_type": "VAT",
                "duty_rate": 5.0,
                "duty_amount": 289350.0,
            },
        ),
        (
            "cusdec_d96b.edi",
            0,
            "declaration_party",
            2,
            {
                "role": "declarant",
                "sequence": 1,
                "party_id": "87654321",
                "city": "KAOHSIUNG",
                "country": "TW",
            },
        ),
        (
            "cusdec_d16a.edi",
            0,
            "declaration",
            0,
            {
                "declaration_type": "EX",
                "country_of_destination": "JP",
                "invoice_amount": 312000.5,
                "issue_datetime": "2026-11-22T09:10:00+00:00",
                "gross_mass_kg": 5230.75,
            },
        ),
        ("cusdec_d16a.edi", 0, "declaration_party", 2, {"name": "基隆報關行"}),
        ("cusdec_d16a.edi", 0, "declaration_item", 0, {"description": "BICYCLES, NOT MOTORISED"}),
    ],
)
def test_mapped_values(ctx, name, message, kind, index, expected):
    record = parsed(ctx, name)[message].records[kind][index]
    assert {k: record[k] for k in expected} == expected


def test_equipment_names_its_consignment(ctx):
    """A manifest holds many consignments: each container record names its own, explicitly."""
    records = parsed(ctx, "cuscar_d96b.edi")[0].records
    links = [
        (e["container_id"], e["transport_document"], e["full_empty"]) for e in records["transport_equipment"]
    ]
    assert links == [
        ("MSCU1234566", "EGLV142600012345", "full"),
        ("TGHU9988774", "EGLV142600012346", "full"),
        ("CMAU3188555", None, "empty"),  # no consignment refers to it: stored, not dropped
    ]
    documents = {c["transport_document"] for c in records["consignment"]}
    assert {e["transport_document"] for e in records["transport_equipment"]} - {None} <= documents
    assert all(e["manifest_id"] == "MAN2611200001" for e in records["transport_equipment"])


def test_a_container_shared_by_two_consignments_appears_for_each(ctx):
    text = (FIXTURES / "cuscar_d96b.edi").read_text(encoding="utf-8")
    text = text.replace("SGP+TGHU9988774+1500'", "SGP+MSCU1234566+1500'")
    items = list(read(text.encode(), unit="t.edi", options={}, ctx=ctx))
    equipment = items[0].records["transport_equipment"]
    shared = [
        (e["transport_document"], e["packages"]) for e in equipment if e["container_id"] == "MSCU1234566"
    ]
    assert shared == [("EGLV142600012345", 1500), ("EGLV142600012346", 1500)]
