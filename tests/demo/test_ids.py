"""Check digits of the identifiers the world hands out, against published examples."""

from __future__ import annotations

import pytest

from sciti.demo import hkid, imo_check_digit, imo_valid, iso6346_check_digit, iso6346_valid, uscc, uscc_valid
from tests.demo.conftest import read_csv, read_jsonl


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("CSQU3054383", True),
        ("MSKU9070323", True),
        ("CSQU3054384", False),
        ("CSQ3054383", False),
        ("CSQA3054383", False),
        ("TGHU0000000", False),
    ],
)
def test_iso6346(number: str, valid: bool) -> None:
    assert iso6346_valid(number) is valid


def test_iso6346_check_digit() -> None:
    assert iso6346_check_digit("CSQU305438") == 3


@pytest.mark.parametrize(
    ("text", "valid"), [("IMO9074729", True), ("9074729", True), ("IMO9074728", False), ("IMO907472", False)]
)
def test_imo(text: str, valid: bool) -> None:
    assert imo_valid(text) is valid
    assert imo_check_digit(907472) == 9


@pytest.mark.parametrize(
    ("code", "valid"),
    [("91350100M000100Y43", True), ("91350100M000100Y44", False), ("91350100M000100Y4", False)],
)
def test_unified_social_credit_code(code: str, valid: bool) -> None:
    assert uscc_valid(code) is valid
    assert uscc("91350100M000100Y4") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("letter", "digits", "expected"), [("A", "123456", "A123456(3)"), ("G", "123456", "G123456(A)")]
)
def test_hkid(letter: str, digits: str, expected: str) -> None:
    assert hkid(letter, digits) == expected


def test_every_container_and_vessel_in_the_feeds_is_valid(tiny_world) -> None:
    root = tiny_world.out
    containers = set()
    for row in read_csv(root / "declarations/csv/declarations.csv"):
        containers.update(c for c in row["container_ids"].split(",") if c)
    for msg in read_jsonl(root / "road/road_cargo.jsonl"):
        if msg["container_id"]:
            containers.add(msg["container_id"])
    assert len(containers) > 100
    assert all(iso6346_valid(c) for c in containers)
    vessels = [r["imo"] for r in read_csv(root / "ground_truth/vessels.csv")]
    assert vessels and all(imo_valid(v) for v in vessels)
    regs = [r["reg_no"] for r in read_csv(root / "ground_truth/companies.csv") if r["country"] == "CN"]
    assert regs and all(uscc_valid(r) for r in regs)
