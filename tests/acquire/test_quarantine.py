"""Quarantine end to end through the real `sciti` commands: list, show, resubmit, discard, batches.

The quarantine commands act as a named account (SCITI_USER here: a data engineer's, decision 0099).
"""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from sciti.access import create_user
from sciti.acquire import AcquireError, Runner, list_quarantine, resubmit
from sciti.cli.main import app
from sciti.ops import migrate, session_scope
from tests.acquire.conftest import HEADER, decl_connector, rows

CSV = (
    f"{HEADER}\nQ1,2024-07-01,KRPUS,1,USD,851713,\nQ2,2024-07-02,KRPUS,2,USD,999999,\n"
    "Q3,2024-07-03,KRPUS,x,USD,851713,\n"
)


@pytest.fixture
def cli(acq_settings, monkeypatch):
    for key, value in {
        "SCITI_HOME": acq_settings.home,
        "SCITI_CONNECTORS_DIR": acq_settings.connectors_dir,
        "SCITI_CODELISTS_DIR": acq_settings.codelists_dir,
    }.items():
        monkeypatch.setenv(key, str(value))
    from sciti.settings import get_settings

    migrate(acq_settings.resolved_ops_db_url)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        create_user(s, "engineer", ["data_engineer"], service=True)
    monkeypatch.setenv("SCITI_USER", "engineer")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(cli, *args: str):
    result = cli.invoke(app, list(args))
    return result


def test_ingest_batches_and_quarantine_commands(acq_settings, cli, tmp_path) -> None:
    decl_connector(acq_settings)
    path = tmp_path / "q.csv"
    path.write_text(CSV)
    done = run(cli, "ingest", "decl", str(path), "--json")
    assert done.exit_code == 0, done.output
    (batch,) = orjson.loads(done.output)
    assert (batch["received"], batch["stored"], batch["quarantined"]) == (3, 1, 2)

    listed = orjson.loads(run(cli, "batches", "--json").output)
    assert listed[0]["reconciled"] is True and listed[0]["status"] == "committed"

    entries = orjson.loads(run(cli, "quarantine", "list", "--json").output)
    by_locator = {e["locator"]: e for e in entries}
    assert set(by_locator) == {"q.csv:line 3", "q.csv:line 4"}
    assert by_locator["q.csv:line 3"]["field"] == "hs_code"

    shown = run(cli, "quarantine", "show", str(by_locator["q.csv:line 4"]["id"]))
    assert "invoice_amount" in shown.output and "Q3,2024-07-03,KRPUS,x,USD,851713," in shown.output

    corrected = tmp_path / "fixed.csv"
    corrected.write_text(f"{HEADER}\nQ3,2024-07-03,KRPUS,3,USD,851713,\n")
    again = run(
        cli, "quarantine", "resubmit", str(by_locator["q.csv:line 4"]["id"]), "--file", str(corrected)
    )
    assert again.exit_code == 0, again.output
    assert {r["declaration_id"] for r in rows(acq_settings, "std.declarations")} == {"Q1", "Q3"}

    dropped = run(
        cli, "quarantine", "discard", str(by_locator["q.csv:line 3"]["id"]), "--reason", "HS 2017 code"
    )
    assert dropped.exit_code == 0, dropped.output
    statuses = {
        e["locator"]: e["status"] for e in orjson.loads(run(cli, "quarantine", "list", "--json").output)
    }
    assert statuses == {"q.csv:line 3": "discarded", "q.csv:line 4": "resubmitted"}
    assert run(cli, "quarantine", "show", "999").exit_code != 0


def test_ingest_exits_non_zero_only_on_real_failure(acq_settings, cli, tmp_path) -> None:
    decl_connector(acq_settings)
    path = tmp_path / "q.csv"
    path.write_text(CSV)
    assert run(cli, "ingest", "decl", str(path)).exit_code == 0  # quarantined rows are not a failure
    assert run(cli, "ingest", "nosuch", str(path)).exit_code != 0
    decl_connector(
        acq_settings,
        name="broken",
        outputs=[
            {
                "kind": "declaration",
                "fields": {"declaration_id": "declaration_id", "version": "nosuchfunc(1)"},
            }
        ],
    )
    failed = run(cli, "ingest", "broken", str(path))
    assert failed.exit_code != 0 and "failed" in failed.output


def test_resubmit_rules(acq_settings, runner: Runner) -> None:
    conn = decl_connector(acq_settings)
    runner.ingest_bytes(conn, CSV.encode(), "r.csv")
    entry = next(e for e in list_quarantine(acq_settings) if e["locator"] == "r.csv:line 4")
    # re-submitting the text unchanged quarantines it again, as a new batch linked to the entry
    result = resubmit(acq_settings, entry["id"], None, user="tester")
    assert (result.status, result.stored, result.quarantined) == ("committed", 0, 1)
    with pytest.raises(AcquireError, match="already resubmitted"):
        resubmit(acq_settings, entry["id"], None, user="tester")
    newest = list_quarantine(acq_settings)[0]
    assert newest["locator"].startswith("r.csv#resubmit-") and newest["status"] == "open"


def test_a_missing_path_stops_the_run_before_anything_is_read(acq_settings, cli, tmp_path) -> None:
    decl_connector(acq_settings)
    path = tmp_path / "q.csv"
    path.write_text(CSV)
    typo = tmp_path / "q2.cvs"
    result = run(cli, "ingest", "decl", str(path), str(typo))
    assert result.exit_code != 0 and "no such file or folder" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a FileNotFoundError
    assert orjson.loads(run(cli, "batches", "--json").output) == []  # nothing half done


def test_show_prints_the_raw_text_unwrapped_for_resubmission(acq_settings, cli, tmp_path) -> None:
    decl_connector(acq_settings)
    long_id = "Q" + "9" * 150  # a line far wider than any terminal
    path = tmp_path / "wide.csv"
    path.write_text(f"{HEADER}\n{long_id},2024-07-03,KRPUS,x,USD,851713,\n")
    assert run(cli, "ingest", "decl", str(path)).exit_code == 0
    (entry,) = orjson.loads(run(cli, "quarantine", "list", "--json").output)
    shown = run(cli, "quarantine", "show", str(entry["id"])).output
    raw = shown.split("raw:", 1)[1]
    assert f"{long_id},2024-07-03,KRPUS,x,USD,851713," in raw.splitlines()
    assert HEADER in raw.splitlines()  # the header too, whole: the text can be sent back as is
