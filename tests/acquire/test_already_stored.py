"""A row or unit sent again with the same values is counted as already stored, not quarantined
(decision 0105): nothing for a data engineer to discard, and counts reconcile as
received = stored + quarantined + already stored in the result, the registry and the commands.
A row or unit is judged whole: one holding records stored with the same values beside new ones is
quarantined, with a reason that says what is new."""

from __future__ import annotations

import collections
import json

import orjson
import pytest

from sciti.acquire import Runner, list_batches, list_quarantine, resubmit
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, decl_connector, rows, write_connector
from tests.acquire.test_quarantine import cli, run  # noqa: F401 - the `cli` fixture

LINES = [f"R{i},2024-02-{i:02d},BE001,{i}0.00,EUR,010121," for i in range(1, 9)]


def _csv(*lines: str, end: str = "\n") -> bytes:
    return (end.join([HEADER, *lines]) + end).encode()


def _counts(result) -> tuple[int, int, int, int]:
    return result.received, result.stored, result.quarantined, result.already_stored


def _ids(settings, ident: str) -> collections.Counter[str]:
    return collections.Counter(r["record_id"] for r in rows(settings, ident))


def _canon(settings):
    return write_connector(
        settings,
        {"name": "canon", "source": "canon", "format": "jsonl", "kinds": ["declaration", "declaration_item"]},
    )


def _line(decl: str, office: str = "X", items: tuple[str, ...] = ("851713",)) -> dict:
    return {
        "declaration": {"declaration_id": decl, "version": 1, "office_code": office},
        "declaration_item": [
            {"declaration_id": decl, "declaration_version": 1, "item_number": n, "hs_code": hs}
            for n, hs in enumerate(items, 1)
        ],
    }


def _jsonl(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_a_file_sent_again_with_other_bytes_leaves_nothing_in_quarantine(
    acq_settings, runner: Runner
) -> None:
    """The whole file again (here with Windows line ends, so it is not a duplicate of the first
    bytes): every row is counted as already stored; the registry reconciles with the new count."""
    conn = decl_connector(acq_settings)
    first = runner.ingest_bytes(conn, _csv(*LINES), "day1.csv")
    again = runner.ingest_bytes(conn, _csv(*LINES, end="\r\n"), "day1-again.csv")
    assert (first.status, again.status) == ("committed", "committed")
    assert _counts(first) == (8, 8, 0, 0)
    assert _counts(again) == (8, 0, 0, 8) and not any(again.tables.values())
    assert list_quarantine(acq_settings) == []
    for ident in ("std.declarations", "std.declaration_items"):
        ids = _ids(acq_settings, ident)
        assert len(ids) == 8 and set(ids.values()) == {1}, ident
    registry = {b["unit"]: b for b in list_batches(acq_settings)}
    assert (registry["day1-again.csv"]["already_stored"], registry["day1-again.csv"]["reconciled"]) == (
        8,
        True,
    )
    assert (registry["day1.csv"]["already_stored"], registry["day1.csv"]["reconciled"]) == (0, True)


def test_a_row_with_stored_and_new_records_is_quarantined_whole(acq_settings, runner: Runner) -> None:
    """Declarations came first through a connector of their own (same source); a file mapping
    declarations and items then brings R1's declaration, stored with the same values, and its
    item, stored nowhere. A row is not split: it is quarantined, and the reason names what is new."""
    alone = decl_connector(acq_settings, name="decl-only", outputs=DECL_CONNECTOR["outputs"][:1])
    first = runner.ingest_bytes(alone, _csv(LINES[0]), "decls.csv")
    both = runner.ingest_bytes(decl_connector(acq_settings), _csv(LINES[0], LINES[1]), "both.csv")
    assert _counts(both) == (2, 1, 1, 0)
    assert len(rows(acq_settings, "std.declaration_items")) == 1  # R2's only
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "both.csv:line 2"
    assert entry["reason"] == (
        f"declaration R1 version 1 is already stored with the same values (from batch {first.batch_id} "
        "(decls.csv)), but declaration item R1 version 1 item 1 is not; a row or unit is stored whole, "
        "so nothing of it was stored: if it adds to what is stored, send all of it as a new version "
        "(an amendment), else discard this entry"
    )


def test_json_units_sent_again_in_one_batch(acq_settings, runner: Runner) -> None:
    """Record-style units judged whole, against the lake and the batch's earlier units: a copy of
    a stored unit is counted; a unit adding an item to a stored declaration is quarantined; a unit
    holding one record twice is quarantined as before."""
    conn = _canon(acq_settings)
    first = runner.ingest_bytes(conn, _jsonl(_line("K1")), "one.jsonl")
    assert _counts(first) == (1, 1, 0, 0)
    grown = _line("K1", items=("851713", "851714"))
    twice = _line("K3", items=("851713",))
    twice["declaration_item"].append(dict(twice["declaration_item"][0]))
    body = _jsonl(_line("K1"), _line("K2"), _line("K2"), _line("K4"), _line("K4", office="Y"), grown, twice)
    result = runner.ingest_bytes(conn, body, "two.jsonl")
    # K1 stored before, K2's second line: counted; K4's other office and K1 grown, K3: quarantined.
    assert _counts(result) == (7, 2, 3, 2)
    assert sorted(_ids(acq_settings, "std.declarations").values()) == [1, 1, 1]  # K1, K2, K4
    reasons = {e["locator"]: e["reason"] for e in list_quarantine(acq_settings)}
    assert set(reasons) == {"two.jsonl:line 5", "two.jsonl:line 6", "two.jsonl:line 7"}
    assert reasons["two.jsonl:line 5"].startswith(
        "declaration K4 version 1 appears twice in this batch with different values: the copy at "
        "two.jsonl:line 4 is stored"
    )
    assert reasons["two.jsonl:line 6"].startswith(
        "declaration K1 version 1, declaration item K1 version 1 item 1 are already stored with the same "
        f"values (from batch {first.batch_id} (one.jsonl)), but declaration item K1 version 1 item 2 is not"
    )
    assert "appears twice in this unit" in reasons["two.jsonl:line 7"]


def test_a_correction_that_matches_the_stored_record_closes_its_entry(acq_settings, runner: Runner) -> None:
    """An entry quarantined for other values, re-submitted with the stored values: nothing is
    missing, so the entry is closed (resubmitted) and the batch counts the row as already stored."""
    conn = decl_connector(acq_settings)
    runner.ingest_bytes(conn, _csv(LINES[0]), "a.csv")
    other = LINES[0].replace(",10.00,", ",11.00,")
    runner.ingest_bytes(conn, _csv(other), "b.csv")
    (entry,) = list_quarantine(acq_settings)
    result = resubmit(acq_settings, entry["id"], HEADER + "\n" + LINES[0] + "\n", user="tester")
    assert (result.status, *_counts(result)) == ("committed", 1, 0, 0, 1)
    (closed,) = list_quarantine(acq_settings)
    assert closed["status"] == "resubmitted"
    assert len(rows(acq_settings, "std.declarations")) == 1


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_the_commands_show_the_count(acq_settings, cli, tmp_path, as_json) -> None:  # noqa: F811
    decl_connector(acq_settings)
    for name, end in (("a.csv", "\n"), ("b.csv", "\r\n")):
        (tmp_path / name).write_bytes(_csv(*LINES[:3], end=end))
        done = run(cli, "ingest", "decl", str(tmp_path / name), *(["--json"] if as_json else []))
        assert done.exit_code == 0, done.output
    listed = run(cli, "batches", *(["--json"] if as_json else []))
    assert listed.exit_code == 0, listed.output
    if as_json:
        (batch,) = orjson.loads(done.output)
        assert (batch["received"], batch["stored"], batch["quarantined"], batch["already_stored"]) == (
            3,
            0,
            0,
            3,
        )
        newest = orjson.loads(listed.output)[0]
        assert (newest["already_stored"], newest["reconciled"]) == (3, True)
        return
    said = " ".join(done.output.split())  # the caption wraps at the terminal's width
    assert "received 3 = stored 0 + quarantined 0 + already stored 3" in said
    assert "sent before with the same values; nothing to do" in said
    (row,) = [line for line in listed.output.splitlines() if "b.csv" in line]
    assert "3 = 0 + 0 + 3" in row  # received = stored + quarantined + already stored
    assert "replaced" not in row  # said only when a row replaced a record (decision 0112)
    assert "does not add up" not in listed.output  # the counts reconcile


def test_the_one_output_pass_judges_copies_within_a_file_too(acq_settings, runner: Runner) -> None:
    """A connector with one output writes certain rows in its single pass, one row at a time; a
    file holding one record twice is still stored once: the same copy counted, another quarantined."""
    conn = decl_connector(acq_settings, name="decl-only", outputs=DECL_CONNECTOR["outputs"][:1])
    other = LINES[0].replace(",10.00,", ",11.00,")
    result = runner.ingest_bytes(conn, _csv(LINES[0], LINES[1], LINES[0], other), "f.csv")
    assert _counts(result) == (4, 2, 1, 1)
    ids = _ids(acq_settings, "std.declarations")
    assert len(ids) == 2 and set(ids.values()) == {1}
    (entry,) = list_quarantine(acq_settings)
    assert entry["locator"] == "f.csv:line 5"
    assert "with different values: the copy at f.csv:line 2 is stored" in entry["reason"]
