"""CSV through the runner: headers, encodings, archives and every kind of bad row.

Each case checks the same three things: what was stored, what was quarantined (locator and a
reason naming the problem) and that counts reconcile (received = stored + quarantined).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from sciti.acquire import Runner, list_quarantine
from sciti.acquire.formats.tabular import normalise_name, normalise_names
from sciti.model import make_record_id
from tests.acquire.conftest import HEADER, decl_connector, rows

GOOD = [
    "D1,2024-01-05,KRPUS,100.5,USD,851713,MSCU1234566",
    "D2,2024-01-06,KRINC,20,EUR,010121,",
    "D3,2024-01-07,KRPUS,7.25,CNY,940511,",
]


def csv_text(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def quarantined(settings) -> dict[str, str]:
    return {q["locator"]: q["reason"] for q in list_quarantine(settings)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Declaration ID", "declaration_id"),
        ("declaration id", "declaration_id"),
        ("DECLARATION_ID", "declaration_id"),
        ("  Declaration-ID ", "declaration_id"),
        ("HS6 Code", "hs6_code"),
        ("Net Mass (kg)", "net_mass_kg"),
        ("申報編號", "申報編號"),
        ("***", "column"),
    ],
)
def test_header_names_are_normalised(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


def test_duplicate_headers_get_suffixes() -> None:
    assert normalise_names(["Amount", "amount", "AMOUNT"]) == ["amount", "amount_2", "amount_3"]


@pytest.mark.parametrize(
    "header",
    [HEADER, HEADER.lower(), HEADER.upper().replace(" ", "_"), HEADER.replace(" ", "  ")],
)
def test_headers_varying_in_case_and_spacing_map_the_same(
    acq_settings, runner: Runner, tmp_path, header
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(csv_text(*GOOD, header=header), encoding="utf-8")
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 3, 3, 0)
    decls = {r["declaration_id"]: r for r in rows(acq_settings, "std.declarations")}
    assert set(decls) == {"D1", "D2", "D3"}
    assert str(decls["D1"]["invoice_amount"]) == "100.5000"
    assert decls["D1"]["locator"] == "in.csv:line 2"


@pytest.mark.parametrize(
    ("encoding", "bom", "office"),
    [
        ("utf-8", False, "首爾"),
        ("utf-8", True, "首爾"),
        ("gb18030", False, "上海海关"),
        ("big5", False, "臺北關"),
        ("cp1252", False, "Zürich"),
    ],
)
def test_encodings_are_transcoded(acq_settings, runner, tmp_path, encoding, bom, office) -> None:
    text = csv_text(f"E1,2024-02-01,{office},1,USD,851713,")
    data = ("\ufeff" + text).encode("utf-8") if bom else text.encode(encoding)
    path = tmp_path / "enc.csv"
    path.write_bytes(data)
    conn = decl_connector(acq_settings, name="enc", options={"encoding": encoding})
    (result,) = runner.ingest_path(conn, path)
    assert (result.received, result.stored, result.quarantined) == (1, 1, 0)
    (decl,) = rows(acq_settings, "std.declarations")
    assert decl["office_code"] == office
    assert decl["declaration_id"] == "E1"  # a BOM never leaks into the first column


def test_wrong_encoding_quarantines_the_bad_line_only(acq_settings, runner, tmp_path) -> None:
    good = csv_text("G1,2024-02-01,臺北關,1,USD,851713,").encode("big5")
    bad = b"G2,2024-02-02,K\xff\x80,1,USD,851713,\n"  # 0xff never starts a Big5 character
    path = tmp_path / "mixed.csv"
    path.write_bytes(good + bad)
    conn = decl_connector(acq_settings, name="big", options={"encoding": "big5"})
    (result,) = runner.ingest_path(conn, path)
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    reasons = quarantined(acq_settings)
    assert list(reasons) == ["mixed.csv:line 3"]
    assert "not valid big5" in reasons["mixed.csv:line 3"]


def test_invalid_utf8_is_quarantined_not_stored_as_garbage(acq_settings, runner, tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_text(*GOOD[:2]).encode() + b"D9,2024-01-01,K\xff\xfeX,1,USD,851713,\n")
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.received, result.stored, result.quarantined) == (3, 2, 1)
    assert "utf-8" in quarantined(acq_settings)["bad.csv:line 4"].lower()


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        ("R1,2024-01-01,KRPUS,1", "line 3 has 4 columns; the header has 7"),
        ("R1,2024-01-01,KRPUS,1,USD,851713,,extra", "line 3 has 8 columns; the header has 7"),
        (",,,", "line 3 has 4 columns; the header has 7"),
        ('R1,"2024-01-01,KRPUS,1,USD,851713,', "line 3 has a quote that is not closed"),
    ],
)
def test_unreadable_rows_are_quarantined_with_line(acq_settings, runner, tmp_path, bad_line, words) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(csv_text(GOOD[0], bad_line) if '"' in bad_line else csv_text(GOOD[0], bad_line, GOOD[1]))
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert result.received == result.stored + result.quarantined
    assert result.stored >= 1 and result.quarantined == 1
    reasons = quarantined(acq_settings)
    assert reasons["ragged.csv:line 3"].startswith(words)
    assert "Expected Number" not in reasons["ragged.csv:line 3"]  # one sentence, not DuckDB's attempts
    assert "D1" in {r["declaration_id"] for r in rows(acq_settings, "std.declarations")}


def test_row_after_a_rejected_row_keeps_its_physical_line(acq_settings, runner, tmp_path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(csv_text(GOOD[0], "broken,row", GOOD[1], GOOD[2].replace("940511", "999999")))
    runner.ingest_path(decl_connector(acq_settings), path)
    assert set(quarantined(acq_settings)) == {"lines.csv:line 3", "lines.csv:line 5"}
    locators = {r["declaration_id"]: r["locator"] for r in rows(acq_settings, "std.declarations")}
    assert locators == {"D1": "lines.csv:line 2", "D2": "lines.csv:line 4"}


@pytest.mark.parametrize(
    ("bad_line", "field", "words"),
    [
        ("T1,2024-13-45,KRPUS,1,USD,851713,", "acceptance_date", "not a valid date"),
        ("T1,2024-01-01,KRPUS,lots,USD,851713,", "invoice_amount", "not an amount"),
        (",2024-01-01,KRPUS,1,USD,851713,", "declaration_id", "declaration_id"),
        ("T1,2024-01-01,KRPUS,1,USD,8517,", "hs_code", "fewer than 6 digits"),
        ("T1,2024-01-01,KRPUS,1,ABC,851713,", "invoice_currency", "ABC"),
        ("T1,2024-01-01,KRPUS,1,USD,999999,", "hs_code", "999999"),
        ("T1,2024-01-01,KRPUS,1,USD,851713,MSCU1234565", "container_id", "MSCU1234565"),
    ],
)
def test_invalid_values_quarantine_the_row_with_field_and_reason(
    acq_settings, runner, tmp_path, bad_line, field, words
) -> None:
    path = tmp_path / "vals.csv"
    path.write_text(csv_text(GOOD[0], bad_line, GOOD[1]))
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.received, result.stored, result.quarantined) == (3, 2, 1)
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "vals.csv:line 3"
    assert entry["field"] == field
    assert words in entry["reason"] and field in entry["reason"]
    # stored by no output: neither the declaration nor its item
    assert {r["declaration_id"] for r in rows(acq_settings, "std.declarations")} == {"D1", "D2"}
    assert {r["declaration_id"] for r in rows(acq_settings, "std.declaration_items")} == {"D1", "D2"}


def test_record_ids_and_parent_links_follow_the_model_formula(acq_settings, runner, tmp_path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text(csv_text(*GOOD))
    runner.ingest_path(decl_connector(acq_settings), path)
    decls = {r["declaration_id"]: r for r in rows(acq_settings, "std.declarations")}
    items = {r["declaration_id"]: r for r in rows(acq_settings, "std.declaration_items")}
    for did in ("D1", "D2", "D3"):
        assert decls[did]["record_id"] == make_record_id("declaration", "decl", did, 1)
        assert items[did]["record_id"] == make_record_id("declaration_item", "decl", did, 1, 1)
        assert items[did]["parent_record_id"] == decls[did]["record_id"]
        assert items[did]["batch_id"] == decls[did]["batch_id"]
        assert decls[did]["source"] == "decl"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "stored", "quarantined", "reason"),
    [
        ("a.csv.gz", lambda t: gzip.compress(t), 3, 0, None),
        ("a.csv.gz", lambda t: gzip.compress(t)[:-30], 0, 1, "not a complete gzip file"),
        (
            "a.zip",
            lambda t: _zip({"x.csv": t, "y.csv": t.replace(b"\nD", b"\nZ"), "readme.txt": b"hi"}),
            6,
            0,
            None,
        ),
        ("a.zip", lambda t: _zip({"x.csv": t})[:-40], 0, 1, "not a readable zip archive"),
        ("a.zip", lambda t: b"PK\x03\x04 this is no zip", 0, 1, "not a readable zip archive"),
    ],
)
def test_archives(acq_settings, runner, tmp_path, name, make, stored, quarantined, reason) -> None:
    path = tmp_path / name
    path.write_bytes(make(csv_text(*GOOD).encode()))
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert result.status == "committed"
    assert (result.stored, result.quarantined) == (stored, quarantined)
    assert result.received == result.stored + result.quarantined
    if reason:
        (entry,) = list_quarantine(acq_settings)
        assert entry["locator"] == name and reason in entry["reason"]
    assert len(rows(acq_settings, "std.declarations")) == stored


def test_folder_takes_matching_files_case_insensitively(acq_settings, runner, tmp_path) -> None:
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "ONE.CSV").write_text(csv_text(GOOD[0]))
    (folder / "sub" / "two.csv").write_text(csv_text(GOOD[1]))
    (folder / "notes.txt").write_text("not data")
    results = runner.ingest_path(decl_connector(acq_settings), folder)
    assert sorted(r.unit for r in results) == ["ONE.CSV", "sub/two.csv"]
    assert len(rows(acq_settings, "std.declarations")) == 2


def test_missing_source_column_fails_the_batch(acq_settings, runner, tmp_path) -> None:
    """A header without a column the connector maps fails the batch, to be retried once the file or
    the connector is fixed (decision 0094): nothing is committed, so nothing is lost as "duplicate"."""
    path = tmp_path / "short.csv"
    path.write_text("Declaration ID,Date\nX1,2024-01-01\n")
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert result.status == "failed" and "no column 'office'" in (result.error or "")
    assert rows(acq_settings, "std.declarations") == []


def test_bad_sql_in_a_connector_fails_the_batch_with_a_reason(acq_settings, runner, tmp_path) -> None:
    conn = decl_connector(
        acq_settings,
        name="badsql",
        outputs=[
            {"kind": "declaration", "fields": {"declaration_id": "declaration_id +* 1", "version": "1"}}
        ],
    )
    path = tmp_path / "in.csv"
    path.write_text(csv_text(*GOOD))
    (result,) = runner.ingest_path(conn, path)
    assert result.status == "failed" and "fix" in (result.error or "")
    assert rows(acq_settings, "std.declarations") == []


def test_empty_file_is_quarantined(acq_settings, runner, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.received, result.stored, result.quarantined) == (1, 0, 1)


MB = 1 << 20


def write_long(path: Path, lines: list[str | int]) -> None:
    """A CSV whose int entries are lines of that many bytes of ``B`` in the Container column,
    written in pieces (never held whole)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for line in lines:
            if isinstance(line, str):
                out.write(line + "\n")
                continue
            out.write("L9,2024-01-05,KRPUS,1,USD,851713,")
            for _ in range(line // MB):
                out.write("B" * MB)
            out.write("\n")


@pytest.mark.parametrize(
    ("lines", "long_line", "size_words"),
    [
        ([40 * MB, GOOD[0], GOOD[1]], 2, "40 MB"),  # past Arrow and past DuckDB's buffer: was lost
        ([GOOD[0], 17 * MB, GOOD[1]], 3, "17 MB"),  # one reader took it, the other did not
        ([GOOD[0], "broken,row", 40 * MB, GOOD[1]], 4, "40 MB"),  # a file only DuckDB reads
        ([GOOD[0], GOOD[1], 40 * MB], 4, "40 MB"),  # the last line, without a line end
    ],
)
def test_a_line_too_long_to_read_is_quarantined_with_its_line(
    acq_settings, runner, tmp_path, lines, long_line, size_words
) -> None:
    path = tmp_path / "long.csv"
    write_long(path, lines)
    if lines[-1] == 40 * MB:  # drop the final line end
        with path.open("r+b") as fh:
            fh.truncate(path.stat().st_size - 1)
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.received, result.stored + result.quarantined) == (len(lines), len(lines))
    reasons = quarantined(acq_settings)
    reason = reasons.pop(f"long.csv:line {long_line}")
    assert reason.startswith(f"line {long_line} is {size_words}") and "at most 16 MB" in reason
    assert all("long" not in r for r in reasons.values())
    locators = {r["declaration_id"]: r["locator"] for r in rows(acq_settings, "std.declarations")}
    expected = {g.split(",")[0]: f"long.csv:line {n}" for n, g in enumerate(lines, start=2) if g in GOOD}
    assert locators == expected  # the rows around it keep their physical lines


def test_a_too_long_line_in_a_transcoded_file_is_quarantined(acq_settings, runner, tmp_path) -> None:
    path = tmp_path / "big5.csv"
    write_long(path, [GOOD[0], 20 * MB, GOOD[1]])
    conn = decl_connector(acq_settings, name="big", options={"encoding": "big5"})
    (result,) = runner.ingest_path(conn, path)
    assert (result.received, result.stored, result.quarantined) == (3, 2, 1)
    assert quarantined(acq_settings)["big5.csv:line 3"].startswith("line 3 is 20 MB")


def test_a_row_of_many_lines_too_long_to_read_is_quarantined(acq_settings, runner, tmp_path) -> None:
    path = tmp_path / "multi.csv"
    with path.open("w", encoding="utf-8") as out:  # a quoted value of 20 lines of 1 MB
        out.write(csv_text(GOOD[0]) + 'M1,2024-01-05,KRPUS,1,USD,851713,"')
        for _ in range(20):
            out.write("B" * MB + "\n")
        out.write('"\n' + GOOD[1] + "\n")
    (result,) = runner.ingest_path(decl_connector(acq_settings), path)
    assert (result.received, result.stored, result.quarantined) == (3, 2, 1)
    assert quarantined(acq_settings)["multi.csv:line 3"].startswith("line 3 is 20 MB")
    locators = {r["declaration_id"]: r["locator"] for r in rows(acq_settings, "std.declarations")}
    assert locators == {"D1": "multi.csv#row=1", "D2": "multi.csv#row=2"}  # its lines are not known
