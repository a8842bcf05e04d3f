"""Every feed is in its real format: WCO DEC XML validates, CUSCAR counts add up, CSV columns
are canonical field names, codes come from the published lists."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pycountry
import pytest
from lxml import etree

from sciti.model.errors import ModelError
from sciti.model.schema import get_kind
from tests.demo.conftest import read_csv, read_jsonl

CUSCAR_SEGMENTS = {
    "UNH",
    "BGM",
    "DTM",
    "RFF",
    "NAD",
    "CTA",
    "COM",
    "FTX",
    "TDT",
    "LOC",
    "GIS",
    "EQD",
    "TSR",
    "MEA",
    "DIM",
    "SEL",
    "TMP",
    "RNG",
    "CNT",
    "CNI",
    "MOA",
    "CUX",
    "CPI",
    "QTY",
    "GID",
    "PAC",
    "HAN",
    "SGP",
    "DGS",
    "PCI",
    "CST",
    "DOC",
    "AUT",
    "UNT",
}


def wco_schema(schema_dir: Path) -> etree.XMLSchema:
    """The DMS envelope and the declaration schema together (the envelope's wildcard is strict)."""
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:sciti:test">
      <xs:import namespace="urn:wco:datamodel:WCO:DocumentMetaData-DMS:2"
                 schemaLocation="{(schema_dir / "DocumentMetaData_2_DMS.xsd").as_uri()}"/>
      <xs:import namespace="urn:wco:datamodel:WCO:DEC-DMS:2"
                 schemaLocation="{(schema_dir / "WCO_DEC_2_DMS.xsd").as_uri()}"/>
    </xs:schema>"""
    return etree.XMLSchema(etree.fromstring(wrapper.encode()))


def test_wco_xml_declarations_validate_against_the_schema(tiny_world, shared_data) -> None:
    schema = wco_schema(shared_data / "wco" / "schemas")
    files = sorted((tiny_world.out / "declarations" / "xml").glob("*.xml"))
    assert len(files) >= 50
    for f in files:
        doc = etree.parse(str(f))
        assert schema.validate(doc), f"{f.name}: {schema.error_log.last_error}"
    ns = {"d": "urn:wco:datamodel:WCO:DEC-DMS:2"}
    doc = etree.parse(str(files[0]))
    items = doc.findall(".//d:GovernmentAgencyGoodsItem", ns)
    assert int(doc.findtext(".//d:GoodsItemQuantity", namespaces=ns)) == len(items)


def test_a_corrupted_declaration_fails_the_schema(tiny_world, shared_data) -> None:
    schema = wco_schema(shared_data / "wco" / "schemas")
    f = sorted((tiny_world.out / "declarations" / "xml").glob("*.xml"))[0]
    text = f.read_text(encoding="utf-8").replace(
        "<FunctionCode>9</FunctionCode>", "<FunctionCode>999</FunctionCode>"
    )
    assert not schema.validate(etree.fromstring(text.encode()))


def split_segments(data: str) -> list[str]:
    """Segments of an interchange, honouring the release character."""
    body = data.split("'", 1)[1] if data.startswith("UNA") else data
    return [s.strip() for s in re.split(r"(?<!\?)'", body) if s.strip()]


def test_cuscar_interchanges_have_right_structure_and_counts(tiny_world) -> None:
    files = sorted((tiny_world.out / "manifests" / "cuscar").glob("*.edi"))
    assert files
    messages = 0
    for f in files:
        segs = split_segments(f.read_bytes().decode("latin-1"))
        assert segs[0].startswith("UNB+UNOC:3+") and segs[-1].startswith("UNZ+")
        ref = segs[0].split("+")[5]
        assert segs[-1] == f"UNZ+{sum(s.startswith('UNH+') for s in segs)}+{ref}"
        current: list[str] = []
        for s in segs[1:-1]:
            tag = s[:3]
            current.append(s)
            if tag == "UNH":
                assert s.endswith("+CUSCAR:D:96B:UN")
                current = [s]
            elif tag == "UNT":
                count, msg_ref = s.split("+")[1:3]
                assert int(count) == len(current), f"{f.name}: UNT says {count}, message has {len(current)}"
                assert current[0].split("+")[1] == msg_ref
                assert [x[:3] for x in current[:3]] == ["UNH", "BGM", "DTM"]
                assert any(x.startswith("CNI+") for x in current) and any(
                    x.startswith("GID+") for x in current
                )
                messages += 1
            assert tag in CUSCAR_SEGMENTS, s
    assert messages == sum(
        1 for f in files for s in split_segments(f.read_text("latin-1")) if s.startswith("UNH")
    )


@pytest.mark.parametrize(
    ("module", "folder", "options"),
    [
        ("sciti.acquire.formats.edifact.reader", "manifests/cuscar", {"message": "CUSCAR"}),
        ("sciti.acquire.formats.wco_xml", "declarations/xml", {}),
    ],
)
def test_every_file_passes_the_platform_reader(tiny_world, settings, module, folder, options) -> None:
    """The acquisition readers (when present) store every unit and reject none."""
    reader = pytest.importorskip(module)
    from sciti.acquire.items import Parsed

    ctx = SimpleNamespace(settings=settings)
    files = sorted((tiny_world.out / folder).iterdir())
    results = [r for f in files for r in reader.read(f.read_bytes(), unit=f.name, options=options, ctx=ctx)]
    rejected = [r for r in results if not isinstance(r, Parsed)]
    assert results and not rejected, rejected[:3]


def test_a_corrupted_cuscar_is_rejected_by_the_platform_reader(tiny_world, settings) -> None:
    reader = pytest.importorskip("sciti.acquire.formats.edifact.reader")
    f = sorted((tiny_world.out / "manifests/cuscar").iterdir())[0]
    data = f.read_bytes().replace(b"UNT+", b"UNT+9", 1)  # wrong segment count in the first message
    results = list(
        reader.read(data, unit=f.name, options={"message": "CUSCAR"}, ctx=SimpleNamespace(settings=settings))
    )
    assert any(type(r).__name__ == "Rejected" for r in results)


@pytest.mark.parametrize(
    ("rel", "kind", "extra"),
    [
        ("declarations/csv/declarations.csv", "declaration", set()),
        ("declarations/csv/declaration_items.csv", "declaration_item", set()),
        ("declarations/csv/declaration_parties.csv", "declaration_party", set()),
        ("road/crossings.csv", "conveyance_crossing", {"mainland_plate"}),
        ("currency/cbni.csv", "currency_declaration", {"record_type"}),
        ("inspections/inspections.csv", "inspection_result", set()),
        ("seizures/seizures.csv", "seizure", set()),
        ("cases/cases.csv", "case", set()),
    ],
)
def test_csv_columns_are_canonical_field_names(tiny_world, rel: str, kind: str, extra: set[str]) -> None:
    try:
        record_kind = get_kind(kind)
    except ModelError:
        pytest.skip(f"record kind {kind} not in this tree")
    with (tiny_world.out / rel).open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    fields = set(record_kind.field_names)
    assert set(header) - extra <= fields, set(header) - extra - fields
    for f in record_kind.fields:
        if f.required:
            assert f.name in header, f.name


def test_codes_come_from_the_published_lists(tiny_world, shared_data) -> None:
    with (shared_data / "codelists" / "hs" / "harmonized-system.csv").open(encoding="utf-8") as fh:
        hs6 = {r["hscode"] for r in csv.DictReader(fh)}
    items = read_csv(tiny_world.out / "declarations/csv/declaration_items.csv")
    assert {r["hs_code"][:6] for r in items} <= hs6
    countries = {c.alpha_2 for c in pycountry.countries}
    currencies = {c.alpha_3 for c in pycountry.currencies}
    heads = read_csv(tiny_world.out / "declarations/csv/declarations.csv")
    assert {r["country_of_dispatch"] for r in heads} | {r["country_of_origin"] for r in items} <= countries
    assert {r["invoice_currency"] for r in heads} <= currencies


@pytest.mark.parametrize(
    "rel",
    [
        "road/road_cargo.jsonl",
        "elock/messages.jsonl",
        "passengers/api_records.jsonl",
        "intel/reports.jsonl",
        "seclogs/auth.jsonl",
        "seclogs/app.jsonl",
        "seclogs/firewall.jsonl",
    ],
)
def test_jsonl_feeds_are_one_json_object_per_line(tiny_world, rel: str) -> None:
    rows = list(read_jsonl(tiny_world.out / rel))
    assert rows and all(isinstance(r, dict) for r in rows)
    ts_key = next((k for k in ("ts", "departure_at", "received_at", "submitted_at") if k in rows[0]), None)
    assert ts_key and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[ts_key]) for r in rows)


def test_intel_reports_come_in_three_languages(tiny_world) -> None:
    langs = {r["language"]: r["text"] for r in read_jsonl(tiny_world.out / "intel/reports.jsonl")}
    assert set(langs) == {"en", "zh", "ru"}
    assert re.search(r"[\u4e00-\u9fff]", langs["zh"]) and re.search(r"[\u0400-\u04ff]", langs["ru"])


def test_manifest_records_scale_seed_and_counts(tiny_world) -> None:
    doc = json.loads((tiny_world.out / "ground_truth" / "manifest.json").read_text())
    assert doc["scale"] == "tiny" and doc["seed"] == 7
    assert (
        doc["counts"]["declarations.csv"] + doc["counts"]["declarations.xml"]
        == doc["parameters"]["declarations"]
    )
