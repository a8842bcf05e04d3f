"""The one-output fast path (one pass writes the certain rows, the model decides the others) and the
Arrow CSV reader: same stored rows, locators and quarantine as the general path, for every case."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sciti.acquire import Runner, list_quarantine, show_quarantine
from sciti.acquire.formats.tabular import _plain
from sciti.model import make_record_id
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, decl_connector, rows

ONE_OUTPUT = {"name": "decl1", "outputs": DECL_CONNECTOR["outputs"][:1]}
LINES = [
    "D1,2024-01-05,KRPUS,100.5,USD,851713,",
    "D2,20240106,  KRINC ,20,eur,010121,",  # loose date, padded office, lower-case code: model decides
    "D3,2024-13-45,KRPUS,7.25,CNY,940511,",  # no such date: quarantined
    "D4,2024-01-07,首爾,1e3,USD,940511,",  # non-ASCII text, amount in exponent form
    'D5,2024-01-08,"KR,PUS",3,USD,940511,',  # a quoted delimiter
    "D6,2024-01-09,KRPUS,,,940511,",  # empty values are nulls
]
BROKEN = "broken,row"  # wrong number of cells: the file goes through DuckDB's reader instead


def csv_text(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def ingest(settings, runner: Runner, tmp_path, connector, text: str, name: str = "in.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    (result,) = runner.ingest_path(connector, path)
    assert result.status == "committed", result.error
    assert result.received == result.stored + result.quarantined
    decls = {r["declaration_id"]: r for r in rows(settings, "std.declarations")}
    return result, decls, {q["locator"]: q for q in list_quarantine(settings)}


@pytest.mark.parametrize("broken", [False, True], ids=["arrow-reader", "duckdb-reader"])
def test_one_output_stores_what_the_model_accepts(acq_settings, runner, tmp_path, broken) -> None:
    lines = [*LINES[:2], BROKEN, *LINES[2:]] if broken else LINES
    result, decls, quarantine = ingest(
        acq_settings, runner, tmp_path, decl_connector(acq_settings, **ONE_OUTPUT), csv_text(*lines)
    )
    assert (result.received, result.stored) == (len(lines), 5)
    assert set(decls) == {"D1", "D2", "D4", "D5", "D6"}
    shift = 1 if broken else 0
    assert decls["D1"]["locator"] == "in.csv:line 2"
    assert decls["D2"]["locator"] == "in.csv:line 3"
    assert decls["D6"]["locator"] == f"in.csv:line {7 + shift}"
    assert str(decls["D2"]["acceptance_date"]) == "2024-01-06"
    assert decls["D2"]["office_code"] == "KRINC" and decls["D2"]["invoice_currency"] == "EUR"
    assert decls["D4"]["office_code"] == "首爾" and str(decls["D4"]["invoice_amount"]) == "1000.0000"
    assert decls["D5"]["office_code"] == "KR,PUS"
    assert decls["D6"]["invoice_amount"] is None and decls["D6"]["invoice_currency"] is None
    assert decls["D1"]["record_id"] == make_record_id("declaration", "decl", "D1", 1)
    bad = quarantine[f"in.csv:line {4 + shift}"]
    assert bad["field"] == "acceptance_date" and "not a valid date" in bad["reason"]
    assert show_quarantine(acq_settings, bad["id"])["raw"] == f"{HEADER}\n{LINES[2]}"
    if broken:
        assert quarantine["in.csv:line 4"]["reason"] == "line 4 has 2 columns; the header has 7"
    assert len(quarantine) == 1 + shift


def test_one_output_gives_the_same_declarations_as_two(acq_settings, tmp_path) -> None:
    text = csv_text(*LINES)
    one = Runner(acq_settings)
    _, decls_one, q_one = ingest(
        acq_settings, one, tmp_path, decl_connector(acq_settings, **ONE_OUTPUT), text
    )
    other = acq_settings.model_copy(update={"home": tmp_path / "other"})
    (tmp_path / "other").mkdir()
    _, decls_two, q_two = ingest(other, Runner(other), tmp_path, decl_connector(other), text)
    skip = {"batch_id", "ingested_at"}
    assert {k: {c: v for c, v in r.items() if c not in skip} for k, r in decls_one.items()} == {
        k: {c: v for c, v in r.items() if c not in skip} for k, r in decls_two.items()
    }
    assert {k: q["reason"] for k, q in q_one.items()} == {k: q["reason"] for k, q in q_two.items()}


@pytest.mark.parametrize("rows_count", [0, 1, 3000])
def test_one_output_counts_reconcile_at_any_size(acq_settings, runner, tmp_path, rows_count) -> None:
    lines = [f"N{n},2024-01-05,KRPUS,{n},USD,851713," for n in range(rows_count)]
    if rows_count > 1:
        lines[rows_count // 2] = f"N{rows_count // 2},2024-01-05,KRPUS,1,QQQ,851713,"  # unknown currency
    result, decls, quarantine = ingest(
        acq_settings, runner, tmp_path, decl_connector(acq_settings, **ONE_OUTPUT), csv_text(*lines)
    )
    assert result.received == rows_count
    assert result.stored == len(decls) == rows_count - (1 if rows_count > 1 else 0)
    if rows_count > 1:
        assert list(quarantine) == [f"in.csv:line {rows_count // 2 + 2}"]
    if rows_count:
        assert decls["N0"]["locator"] == "in.csv:line 2"


def test_one_output_transcoded_bad_line_is_quarantined(acq_settings, runner, tmp_path) -> None:
    good = csv_text("G1,2024-02-01,臺北關,1,USD,851713,").encode("big5")
    bad = b"G2,2024-02-02,K\xff\x80,1,USD,851713,\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(good + bad)
    conn = decl_connector(acq_settings, **ONE_OUTPUT, options={"encoding": "big5"})
    (result,) = runner.ingest_path(conn, path)
    assert (result.received, result.stored, result.quarantined) == (2, 1, 1)
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "mixed.csv:line 3" and "not valid big5" in entry["reason"]
    (decl,) = rows(acq_settings, "std.declarations")
    assert decl["office_code"] == "臺北關"


def test_one_output_file_with_multiline_value_uses_row_locators(acq_settings, runner, tmp_path) -> None:
    text = csv_text(LINES[0], 'M1,2024-01-05,"KR\nPUS",1,USD,851713,', LINES[4])
    result, decls, _ = ingest(
        acq_settings, runner, tmp_path, decl_connector(acq_settings, **ONE_OUTPUT), text
    )
    assert result.stored == 3
    assert decls["M1"]["office_code"] == "KR\nPUS"
    assert decls["M1"]["locator"] == "in.csv#row=2"


@pytest.mark.parametrize(
    ("values", "plain"),
    [
        (["A1", "b", None, "~x!"], True),
        (["A1", " b"], False),
        (["A1", "b\t"], False),
        (["A1", ""], False),
        (["A1", "首爾"], False),  # not ASCII at an edge: the per-value check decides
        (["A1", "x\u3000"], False),
        ([None, None], True),
    ],
)
def test_plain_columns_are_found_from_the_arrow_buffers(values, plain) -> None:
    column = pa.chunked_array([pa.array(values[:1], pa.string()), pa.array(values[1:], pa.string())])
    assert _plain(column) is plain
    sliced = pa.chunked_array([pa.array(["pad", *values], pa.string()).slice(1)])
    assert _plain(sliced) is plain
