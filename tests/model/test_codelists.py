"""Code lists loaded from the published files in ../shared/data/codelists and from pycountry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sciti.model import CodeLists, ModelError, load_codelists


def test_hs_levels_from_published_csv(codelists: CodeLists) -> None:
    levels = {}
    for h in codelists.hs.values():
        levels[h.level] = levels.get(h.level, 0) + 1
    # HS 2022: 96 chapters, 1,228 headings, 5,612 subheadings (Comtrade's 99/TOTAL rows left out)
    assert levels == {2: 96, 4: 1228, 6: 5612}
    assert codelists.hs["010121"].description.startswith("Horses; live, pure-bred")
    assert codelists.hs["010121"].parent == "0101"
    assert "999999" not in codelists.hs6


@pytest.mark.parametrize(
    ("attr", "code", "present"),
    [
        ("country", "KR", True),
        ("country", "TW", True),
        ("country", "XX", False),
        ("currency", "KRW", True),
        ("currency", "TWD", True),
        ("currency", "ABC", False),
        ("unlocode", "CN", True),
        ("unlocode", "XZ", True),  # UN/LOCODE's "international waters"
        ("unlocode", "QQ", False),
    ],
)
def test_iso_and_unlocode(codelists: CodeLists, attr: str, code: str, present: bool) -> None:
    assert (code in getattr(codelists, attr)) is present


def test_cached_per_folder(shared_data: Path) -> None:
    assert load_codelists(shared_data / "codelists") is load_codelists(shared_data / "codelists" / ".")


def test_as_tables(codelists: CodeLists) -> None:
    tables = codelists.as_tables()
    assert set(tables) == {"hs", "countries", "currencies", "unlocode_countries"}
    assert tables["hs"].num_rows == len(codelists.hs)
    assert tables["hs"].column_names == ["code", "description", "level", "parent", "section"]
    assert tables["countries"].num_rows == len(codelists.country)
    assert "KRW" in tables["currencies"].column("code").to_pylist()


@pytest.mark.parametrize("missing", ["hs/harmonized-system.csv", "unlocode/country-codes.csv"])
def test_missing_file_names_the_setting(tmp_path: Path, shared_data: Path, missing: str) -> None:
    folder = tmp_path / "codelists"
    shutil.copytree(shared_data / "codelists", folder)
    (folder / missing).unlink()
    with pytest.raises(ModelError) as err:
        load_codelists(folder)
    assert "SCITI_CODELISTS_DIR" in err.value.remedy


def test_malformed_hs_file(tmp_path: Path, shared_data: Path) -> None:
    folder = tmp_path / "codelists"
    shutil.copytree(shared_data / "codelists", folder)
    (folder / "hs" / "harmonized-system.csv").write_text("code,text\n01,Animals\n", encoding="utf-8")
    with pytest.raises(ModelError, match="malformed"):
        load_codelists(folder)
