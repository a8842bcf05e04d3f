"""ISO 6346 and IMO check digits against published examples and wrong digits."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sciti.model import (
    IDENTIFIERS,
    imo_check_digit,
    imo_valid,
    iso6346_check_digit,
    iso6346_valid,
    normalise_container,
    normalise_imo,
)
from sciti.model.identifiers import imo_valid_array, iso6346_valid_array, unlocode_form_array

# CSQU3054383 is the worked example of ISO 6346 (Annex A); the others are real boxes and ships.
CONTAINERS = [
    ("CSQU3054383", True),
    ("CSQU3054384", False),  # wrong check digit
    ("MSCU1234566", True),
    ("MSKU9070323", True),
    ("TGHU0000000", False),
    ("CSQA3054383", False),  # category must be U, J or Z
    ("CSQJ3054383", False),  # same serial under category J has another check digit
    ("CSQU305438", False),  # too short
    ("C5QU3054383", False),  # digit in owner code
    ("csqu3054383", False),  # validators expect normalised input
    ("", False),
]


@pytest.mark.parametrize(("number", "valid"), CONTAINERS)
def test_iso6346(number: str, valid: bool) -> None:
    assert iso6346_valid(number) is valid
    assert iso6346_valid_array(pa.array([number])).to_pylist() == [valid]


@pytest.mark.parametrize(
    ("prefix", "digit"),
    [
        ("CSQU305438", 3),
        ("MSKU907032", 3),
        # weighted sum of CSQU000007 is 10 modulo 11: ISO 6346 writes that remainder as 0
        ("CSQU000007", 0),
    ],
)
def test_iso6346_check_digit(prefix: str, digit: int) -> None:
    assert iso6346_check_digit(prefix) == digit


def test_iso6346_remainder_ten_number_is_valid_with_zero() -> None:
    assert iso6346_valid("CSQU0000070")
    assert not iso6346_valid("CSQU0000071")


def test_iso6346_check_digit_refuses_bad_prefix() -> None:
    with pytest.raises(ValueError, match="serial"):
        iso6346_check_digit("CSQ1305438")


IMOS = [
    ("9074729", True),  # the worked example usually published for the IMO number
    ("9074728", False),
    ("9176187", True),
    ("9176186", False),
    ("907472", False),
    ("90747290", False),
    ("IMO9074729", False),  # validators expect normalised input
]


@pytest.mark.parametrize(("number", "valid"), IMOS)
def test_imo(number: str, valid: bool) -> None:
    assert imo_valid(number) is valid
    assert imo_valid_array(pa.array([number])).to_pylist() == [valid]


def test_imo_check_digit() -> None:
    # 9*7 + 0*6 + 7*5 + 4*4 + 7*3 + 2*2 = 139 -> 9
    assert imo_check_digit("907472") == 9


@pytest.mark.parametrize(
    ("raw", "normalised", "fn"),
    [
        ("csqu 305438-3", "CSQU3054383", normalise_container),
        ("CSQU.305438/3", "CSQU3054383", normalise_container),
        ("IMO 9074729", "9074729", normalise_imo),
        ("imo9074729", "9074729", normalise_imo),
        (" 9074729 ", "9074729", normalise_imo),
    ],
)
def test_normalise(raw: str, normalised: str, fn) -> None:
    assert fn(raw) == normalised


def test_identifiers_registry() -> None:
    assert set(IDENTIFIERS) == {"iso6346", "imo"}
    assert IDENTIFIERS["iso6346"]("CSQU3054383")
    assert IDENTIFIERS["imo"]("9074729")


def test_vectorised_with_nulls_and_mixed_lengths() -> None:
    arr = pa.chunked_array([["CSQU3054383", None], ["X", "MSKU9070323", "CSQU3054384"]])
    assert iso6346_valid_array(arr).to_pylist() == [True, False, False, True, False]
    assert unlocode_form_array(pa.array(["CNSHA", "CN0HA", "C1SHA", None, "KRPU2"])).to_pylist() == [
        True,
        False,
        False,
        False,
        True,
    ]
