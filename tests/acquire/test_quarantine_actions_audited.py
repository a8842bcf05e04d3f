"""Quarantine actions are audited and scoped (decision 0099).

The review: as `engineer`, re-submitting ONE quarantined CSV line with a header and 3 rows answered
`received 3, stored 3` (the corrected line, a made-up declaration, a copy of a stored one), with no
audit entry, `resolved_by: root` from the CLI, and `show` returned the raw line unaudited.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
from typer.testing import CliRunner

from sciti.access import create_user, list_entries
from sciti.access.audit import verify
from sciti.acquire import Runner, list_batches, list_quarantine, resubmit, show_quarantine
from sciti.acquire.blobs import put_bytes
from sciti.acquire.quarantine import CorrectionMismatch, correction_scope, discard
from sciti.cli.main import app
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope, utcnow
from sciti.settings import Settings, get_settings
from tests.acquire.conftest import HEADER, decl_connector, rows
from tests.conftest import settings_env

GOOD = "Q1,2024-07-01,KRPUS,1,USD,851713,"
BAD = "Q3,2024-07-03,KRPUS,x,USD,851713,"  # line 3 of the unit: not a number
FIXED = "Q3,2024-07-03,KRPUS,3,USD,851713,"
UNIT = f"{HEADER}\n{GOOD}\n{BAD}\n"
# The review's correction: the corrected line, a made-up declaration, a stored one with new values.
THREE = f"{HEADER}\n{FIXED}\nQ9,2024-07-09,KRPUS,9,USD,851713,\nQ1,2024-07-01,KRPUS,999,USD,851713,\n"


def audit_of(settings: Settings, action: str) -> list:
    with session_scope(settings.resolved_ops_db_url) as s:
        return list_entries(s, action=action)


def chain_ok(settings: Settings) -> bool:
    with session_scope(settings.resolved_ops_db_url) as s:
        return verify(s).ok


@pytest.fixture
def entry(acq_settings: Settings, runner: Runner) -> dict:
    """One quarantined CSV line (v.csv line 3) of a unit whose other row was stored."""
    conn = decl_connector(acq_settings)
    runner.ingest_bytes(conn, UNIT.encode(), "v.csv")
    (found,) = list_quarantine(acq_settings)
    assert found["locator"] == "v.csv:line 3"
    return found


def test_a_row_entry_takes_a_correction_of_one_record_and_the_refusal_is_audited(
    acq_settings: Settings, entry: dict
) -> None:
    batches = len(list_batches(acq_settings))
    with pytest.raises(CorrectionMismatch) as refused:
        resubmit(acq_settings, entry["id"], THREE, user="engineer", source="cli")
    message = str(refused.value)
    assert f"quarantine entry {entry['id']} is one quarantined row (v.csv line 3)" in message
    assert "the correction holds 3 records" in message
    assert "re-submit one row" in message and "through the connector" in message
    assert refused.value.http_status == 422
    # Nothing stored, no batch made, the entry still open.
    assert sorted(r["declaration_id"] for r in rows(acq_settings, "std.declarations")) == ["Q1"]
    assert len(list_batches(acq_settings)) == batches
    assert show_quarantine(acq_settings, entry["id"])["status"] == "open"
    [audited] = audit_of(acq_settings, "quarantine.resubmit")
    assert (audited.actor, audited.outcome, audited.source) == ("engineer", "refused", "cli")
    assert audited.target == f"quarantine:{entry['id']}"
    assert audited.details["records"] == 3 and audited.details["error"] == "correction_mismatch"

    # One corrected row is stored and closes the entry, audited with the counts, never the text.
    result = resubmit(acq_settings, entry["id"], f"{HEADER}\n{FIXED}\n", user="engineer", source="cli")
    assert (result.status, result.received, result.stored) == ("committed", 1, 1)
    done = audit_of(acq_settings, "quarantine.resubmit")[0]
    assert (done.actor, done.outcome) == ("engineer", "ok")
    assert {
        k: done.details[k] for k in ("quarantine_id", "batch_id", "received", "stored", "quarantined")
    } == {
        "quarantine_id": entry["id"],
        "batch_id": entry["batch_id"],
        "received": 1,
        "stored": 1,
        "quarantined": 0,
    }
    assert done.details["resubmit_batch_id"] == result.batch_id
    text = orjson.dumps(done.details).decode() + orjson.dumps(audited.details).decode()
    assert "KRPUS" not in text and "851713" not in text  # no raw content, no correction
    closed = show_quarantine(acq_settings, entry["id"])
    assert (closed["status"], closed["resolved_by"]) == ("resubmitted", "engineer")
    assert chain_ok(acq_settings)


def test_a_whole_unit_entry_takes_the_whole_corrected_unit(acq_settings: Settings, runner: Runner) -> None:
    """A unit that failed as a whole (its entry's locator is the unit) is corrected by the unit."""
    decl_connector(acq_settings)
    whole = HEADER + "\n" + "".join(f"W-{i},2024-07-0{1 + i},KRPUS,{i + 1},USD,851713,\n" for i in range(5))
    key = put_bytes(acq_settings, whole.encode())
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        batch = Batch(
            id=uuid.uuid4().hex, connector="decl", source="decl", transport="file", unit="w.csv",
            fingerprint=key, object_key=key, status="committed", received=1, stored=0, quarantined=1,
            started_at=utcnow(), finished_at=utcnow(),
        )  # fmt: skip
        s.add(batch)
        s.flush()
        s.add(
            QuarantineRecord(
                batch_id=batch.id, connector="decl", source="decl", locator="w.csv",
                reason="the reader stopped on this unit", raw=None, details={}, status="open",
                created_at=utcnow(),
            )
        )  # fmt: skip
    (found,) = list_quarantine(acq_settings)
    result = resubmit(acq_settings, found["id"], whole, user="engineer", source="cli")
    assert (result.status, result.received, result.stored) == ("committed", 5, 5)
    [audited] = audit_of(acq_settings, "quarantine.resubmit")
    assert (audited.actor, audited.outcome, audited.details["stored"]) == ("engineer", "ok", 5)


@pytest.mark.parametrize(
    ("locator", "raw", "scope"),
    [
        ("valid.csv:line 4696", "h\nx", ("row", "valid.csv line 4696")),
        ("old/r.csv#resubmit-7:line 2", "h\nx", ("row", "old/r.csv#resubmit-7 line 2")),
        ("feed.jsonl:line 12", "{}", ("row", "feed.jsonl line 12")),
        ("rows.parquet#row=5", "{}", ("row", "rows.parquet row 5")),
        ("env.xml#/Declaration[2]", "<x/>", ("declaration", "env.xml Declaration[2]")),
        ("one.xml#/Declaration", "<x/>", ("declaration", "one.xml Declaration")),
        ("one.xml#/Declaration/TypeCode:line 14", "<x/>", ("declaration", "one.xml line 14")),
        ("one.xml#/md:MetaData/Declaration:line 9", "<x/>", ("declaration", "one.xml line 9")),
        ("c.edi#msg=M7;seg=4", "UNH", ("message", "c.edi message M7")),
        # The whole unit: it did not parse, its envelope was wrong, or it failed as one.
        ("bad.xml#/:line 3", "<x", None),
        ("empty.xml#/Declaration", "", None),
        ("c.edi#interchange=?;seg=0", "UN", None),
        ("c6.csv", None, None),
        ("a.zip!inner.csv", None, None),
    ],
)
def test_what_an_entry_is_comes_from_its_locator(locator: str, raw: str | None, scope) -> None:
    assert correction_scope(locator, raw) == scope


def test_show_is_audited_as_a_read_of_raw_content_and_discard_too(
    acq_settings: Settings, entry: dict
) -> None:
    shown = show_quarantine(acq_settings, entry["id"], user="engineer", source="10.0.0.7")
    assert BAD in shown["raw"]
    [read] = audit_of(acq_settings, "quarantine.read")
    assert (read.actor, read.source, read.target) == ("engineer", "10.0.0.7", f"quarantine:{entry['id']}")
    assert read.details["data_source"] == "decl" and read.details["connector"] == "decl"
    assert "KRPUS" not in orjson.dumps(read.details).decode()

    closed = discard(acq_settings, entry["id"], "a test row", user="engineer", source="cli")
    assert (closed["status"], closed["resolved_by"]) == ("discarded", "engineer")
    [dropped] = audit_of(acq_settings, "quarantine.discard")
    assert (dropped.actor, dropped.outcome, dropped.source) == ("engineer", "ok", "cli")
    assert dropped.details["batch_id"] == entry["batch_id"]
    with pytest.raises(Exception, match="already discarded"):
        discard(acq_settings, entry["id"], "again", user="engineer", source="cli")
    assert audit_of(acq_settings, "quarantine.discard")[0].outcome == "refused"
    assert chain_ok(acq_settings)


# -- the CLI acts as a named account ---------------------------------------------------------------
@pytest.fixture
def cli(acq_settings: Settings, entry: dict, monkeypatch: pytest.MonkeyPatch):
    for key, value in settings_env(acq_settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCITI_USER", raising=False)
    get_settings.cache_clear()
    migrate(acq_settings.resolved_ops_db_url)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        create_user(s, "engineer", ["data_engineer"], service=True)
        create_user(s, "auditor", ["security_officer"], service=True)
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("args", "permission"),
    [
        (["list"], "quarantine.read"),
        (["show", "{id}"], "quarantine.read"),
        (["resubmit", "{id}"], "quarantine.resubmit"),
        (["discard", "{id}", "--reason", "x"], "quarantine.resubmit"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else v,
)
def test_the_quarantine_commands_act_as_a_named_account_with_the_permission(
    acq_settings: Settings, entry: dict, cli, args: list[str], permission: str
) -> None:
    command = ["quarantine", *(a.format(id=entry["id"]) for a in args)]
    nobody = cli(*command)
    assert nobody.exit_code == 1 and "give --user NAME (or SCITI_USER)" in nobody.output, nobody.output
    lacking = cli(*command, "--user", "auditor")
    assert lacking.exit_code == 1, lacking.output
    assert f"account 'auditor' lacks the {permission} permission" in lacking.output
    assert BAD not in lacking.output
    assert show_quarantine(acq_settings, entry["id"])["status"] == "open"  # nothing was done


def test_cli_show_resubmit_and_discard_record_the_account(
    acq_settings: Settings, entry: dict, cli, runner: Runner, tmp_path
) -> None:
    listed = cli("quarantine", "list", "--json", "--user", "engineer")
    assert listed.exit_code == 0, listed.output
    assert all("raw" not in e for e in orjson.loads(listed.output))  # the list never shows raw text
    assert audit_of(acq_settings, "quarantine.read") == []

    shown = cli("quarantine", "show", str(entry["id"]), "--user", "engineer")
    assert shown.exit_code == 0 and BAD in shown.output
    [read] = audit_of(acq_settings, "quarantine.read")
    assert (read.actor, read.source) == ("engineer", "cli")

    three = tmp_path / "three.csv"
    three.write_text(THREE)
    refused = cli("quarantine", "resubmit", str(entry["id"]), "--file", str(three), "--user", "engineer")
    assert refused.exit_code == 1
    assert f"quarantine entry {entry['id']} is one quarantined row (v.csv line 3)" in refused.output
    assert "the correction holds 3 records" in " ".join(refused.output.split())
    assert sorted(r["declaration_id"] for r in rows(acq_settings, "std.declarations")) == ["Q1"]

    one = tmp_path / "one.csv"
    one.write_text(f"{HEADER}\n{FIXED}\n")
    done = cli("quarantine", "resubmit", str(entry["id"]), "--file", str(one), "--user", "engineer")
    assert done.exit_code == 0, done.output
    assert show_quarantine(acq_settings, entry["id"])["resolved_by"] == "engineer"  # not the OS user
    assert [e.outcome for e in audit_of(acq_settings, "quarantine.resubmit")] == ["ok", "refused"]
    assert {e.actor for e in audit_of(acq_settings, "quarantine.resubmit")} == {"engineer"}

    # Another bad line, discarded from the CLI as the account.
    runner.ingest_bytes(
        decl_connector(acq_settings), f"{HEADER}\n{BAD.replace('Q3', 'Q4')}\n".encode(), "w.csv"
    )
    other = next(e for e in list_quarantine(acq_settings) if e["status"] == "open")
    dropped = cli("quarantine", "discard", str(other["id"]), "--reason", "test row", "--user", "engineer")
    assert dropped.exit_code == 0, dropped.output
    assert show_quarantine(acq_settings, other["id"])["resolved_by"] == "engineer"
    [discarded] = audit_of(acq_settings, "quarantine.discard")
    assert (discarded.actor, discarded.source, discarded.target) == (
        "engineer",
        "cli",
        f"quarantine:{other['id']}",
    )
    assert chain_ok(acq_settings)
