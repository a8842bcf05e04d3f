"""Reference zone: a code list is replaced whole, atomically, with its history kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyarrow import csv

from sciti.lake import Lake, LakeError, publish_ref, query


def test_publish_replaces_the_whole_list(any_lake: Lake, shared_data: Path) -> None:
    countries = csv.read_csv(shared_data / "codelists" / "unlocode" / "country-codes.csv")
    first = publish_ref(any_lake, "countries", countries)
    count = query(any_lake, "SELECT count(*) AS n FROM ref.countries").to_pylist()[0]["n"]
    assert count == countries.num_rows > 200

    # the next version drops a code, renames nothing, and adds a column
    newer = countries.filter(pa.compute.not_equal(countries["CountryCode"], "AD"))
    newer = newer.append_column("valid_from", pa.array(["2026-01-01"] * newer.num_rows))
    publish_ref(any_lake, "countries", newer)

    now = query(any_lake, "SELECT count(*) AS n, count(valid_from) AS v FROM ref.countries").to_pylist()[0]
    assert now == {"n": countries.num_rows - 1, "v": countries.num_rows - 1}
    then = query(any_lake, "SELECT * FROM ref.countries WHERE \"CountryCode\" = 'AD'", as_of=first)
    assert then.num_rows == 1
    # one commit, one snapshot: no moment in history where the list is empty
    assert [(h.operation, h.total_rows) for h in any_lake.history("ref.countries")] == [
        ("append", countries.num_rows),
        ("overwrite", countries.num_rows - 1),
    ]


@pytest.mark.parametrize("name", ["Bad-Name", "../x", "", "1abc"])
def test_bad_names(lake: Lake, name: str) -> None:
    with pytest.raises(LakeError, match="not a valid reference table name"):
        publish_ref(lake, name, pa.table({"code": ["A"]}))
