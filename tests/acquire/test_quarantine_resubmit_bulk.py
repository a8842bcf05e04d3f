"""Re-submitting a selection of quarantine entries as they were quarantined (decision 0117), on
SQLite and PostgreSQL.

The entries come from real ingests: declaration rows whose HS code lost its leading zero in a
spreadsheet export (``10121`` for ``010121``) are quarantined ("fewer than 6 digits"); the data
engineer fixes the connector (``lpad(hs_code, 6, '0')``) and re-submits them all unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from sqlalchemy import event, select

from sciti.access import list_entries
from sciti.access.audit import verify
from sciti.acquire import Runner, list_quarantine
from sciti.acquire.errors import AcquireError
from sciti.acquire.quarantine import discard, resubmit
from sciti.acquire.quarantine_bulk import Selection
from sciti.acquire.quarantine_resubmit import BulkResubmitResult, _stayed, resubmit_selection
from sciti.acquire.units import BUNDLE
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope, utcnow
from sciti.ops.db import get_engine
from sciti.settings import Settings
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, decl_connector, rows, write_connector
from tests.conftest import make_settings

ITEMS = DECL_CONNECTOR["outputs"][1]
FIXED = {
    **DECL_CONNECTOR,
    "outputs": [
        DECL_CONNECTOR["outputs"][0],
        {**ITEMS, "fields": {**ITEMS["fields"], "hs_code": "lpad(hs_code, 6, '0')"}},
    ],
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bulk_settings(request: pytest.FixtureRequest, acq_settings: Settings) -> Settings:
    if request.param == "sqlite":
        migrate(acq_settings.resolved_ops_db_url)
        return acq_settings
    url = request.getfixturevalue("pg_database")
    s = make_settings(
        acq_settings.home, connectors_dir=acq_settings.connectors_dir, catalog_uri=url, ops_db_url=url
    )
    migrate(url)
    return s


def lost_zero(n: int, tag: str, good: int = 0) -> bytes:
    """``good`` rows that store, then ``n`` whose HS code lost its leading zero: ``n`` entries."""
    ok = [f"{tag}-ok{i},2024-07-01,KRPUS,{i + 1},USD,851713," for i in range(good)]
    bad = [f"{tag}-{i},2024-07-01,KRPUS,{i + 1},USD,10121," for i in range(n)]
    return (HEADER + "\n" + "\n".join(ok + bad) + "\n").encode()


def ingest(settings: Settings, n: int, tag: str, good: int = 0, unit: str = "") -> str:
    result = Runner(settings).ingest_bytes(
        decl_connector(settings), lost_zero(n, tag, good), unit or f"{tag}.csv"
    )
    assert (result.stored, result.quarantined) == (good, n)
    return result.batch_id


def open_ids(settings: Settings) -> set[int]:
    return {e["id"] for e in list_quarantine(settings, status="open", limit=100_000)}


def bulk_audits(settings: Settings) -> list:
    with session_scope(settings.resolved_ops_db_url) as s:
        return [e for e in list_entries(s, action="quarantine.resubmit") if e.details.get("bulk")]


def single_audits(settings: Settings) -> list:
    with session_scope(settings.resolved_ops_db_url) as s:
        return [e for e in list_entries(s, action="quarantine.resubmit") if not e.details.get("bulk")]


def reconciles(done) -> bool:
    return done.selected == done.resubmitted + done.still_open + done.closed_meanwhile + done.remaining


def test_a_fixed_cause_stores_every_entry_in_one_batch_for_their_file(bulk_settings: Settings) -> None:
    batch = ingest(bulk_settings, 12, "F", good=3)
    other = ingest(bulk_settings, 2, "G")  # another file with the same cause: not selected
    write_connector(bulk_settings, FIXED)
    mine = open_ids(bulk_settings) - {
        e["id"] for e in list_quarantine(bulk_settings) if e["batch_id"] == other
    }

    preview = resubmit_selection(bulk_settings, Selection(batch_id=batch), "engineer", dry_run=True)
    assert (preview.selected, preview.taken, preview.remaining, preview.resubmitted) == (12, 12, 0, 0)
    assert len(open_ids(bulk_settings)) == 14 and bulk_audits(bulk_settings) == []  # nothing changed

    seen: list[tuple[int, int]] = []
    done = resubmit_selection(
        bulk_settings,
        Selection(batch_id=batch),
        "engineer",
        source="10.0.0.9",
        progress=lambda n, t: seen.append((n, t)),
    )
    assert (done.selected, done.resubmitted, done.still_open, done.remaining) == (12, 12, 0, 0)
    assert (done.stored, done.quarantined, done.already_stored) == (12, 0, 0) and reconciles(done)
    assert seen == [(12, 12)]  # one bundle (decision 0120)
    assert open_ids(bulk_settings) == open_ids(bulk_settings) - mine and len(open_ids(bulk_settings)) == 2

    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        closed = s.scalars(select(QuarantineRecord).where(QuarantineRecord.id.in_(mine))).all()
        assert {(q.status, q.resolved_by, q.details["resubmitted_with"]) for q in closed} == {
            ("resubmitted", "engineer", done.audit_ref)
        }
        batches = {q.id: s.get(Batch, q.resubmit_batch_id) for q in closed}
    [bundle] = {b.id: b for b in batches.values()}.values()  # one batch for the file's 12 entries
    first, last = min(mine), max(mine)
    assert (bundle.transport, bundle.unit, bundle.resubmission_of) == (
        BUNDLE,
        f"resubmit-{first}-{last}.zip",
        None,
    )
    assert (bundle.received, bundle.stored, bundle.quarantined, bundle.status) == (12, 12, 0, "committed")
    found = rows(bulk_settings, "std.declarations")
    stored = [r["declaration_id"] for r in found]
    assert sorted(stored) == sorted([f"F-ok{i}" for i in range(3)] + [f"F-{i}" for i in range(12)])
    # each row names the entry it came back from, as a single re-submission's would
    by_id = {r["declaration_id"]: r["locator"] for r in found}
    assert by_id["F-0"] == f"resubmit-{first}-{last}.zip!F.csv#resubmit-{first}:line 2"
    assert {r["hs_code"] for r in rows(bulk_settings, "std.declaration_items")} >= {"010121"}

    [summary] = bulk_audits(bulk_settings)
    assert (summary.actor, summary.source, summary.outcome) == ("engineer", "10.0.0.9", "ok")
    assert summary.target == f"quarantine:selection:{done.audit_ref}"
    assert summary.details["selection"] == {"batch_id": batch}
    assert {k: summary.details[k] for k in ("selected", "resubmitted", "still_open", "remaining")} == {
        "selected": 12,
        "resubmitted": 12,
        "still_open": 0,
        "remaining": 0,
    }
    each = single_audits(bulk_settings)
    assert len(each) == 12 and {e.details["resubmitted_with"] for e in each} == {done.audit_ref}
    assert "F-1" not in orjson.dumps(summary.details).decode()  # no content in the audit trail
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        assert verify(s).ok


def test_an_unfixed_cause_quarantines_again_and_the_run_never_takes_its_own_entries(
    bulk_settings: Settings,
) -> None:
    ingest(bulk_settings, 4, "U")
    before = open_ids(bulk_settings)
    done = resubmit_selection(bulk_settings, Selection(connector="decl"), "engineer")
    # each entry was re-run as it was: quarantined again under a new open entry, which the run
    # (whose selection was fixed when it began) does not take, or it would never end
    assert (done.selected, done.resubmitted, done.quarantined, done.stored, done.remaining) == (4, 4, 4, 0, 0)
    after = open_ids(bulk_settings)
    assert not after & before and len(after) == 4 and min(after) > (done.up_to_id or 0)


def test_entries_that_stay_open_are_counted_with_why_and_the_run_goes_on(
    bulk_settings: Settings,
) -> None:
    ingest(bulk_settings, 5, "A")
    write_connector(bulk_settings, FIXED)
    # a second connector's entries, whose connector has since been removed: they cannot run again
    gone = write_connector(bulk_settings, {**DECL_CONNECTOR, "name": "gone", "source": "gone"})
    result = Runner(bulk_settings).ingest_bytes(gone, lost_zero(3, "B"), "b.csv")
    assert result.quarantined == 3
    shutil.rmtree(Path(bulk_settings.connectors_dir) / "gone")
    gone_ids = sorted(open_ids(bulk_settings))[5:]

    done = resubmit_selection(bulk_settings, Selection(everything=True), "engineer")
    assert (done.selected, done.resubmitted, done.still_open, done.closed_meanwhile) == (8, 5, 3, 0)
    assert reconciles(done)
    [why] = done.reasons
    assert (why.code, why.count, why.ids) == ("connector_error", 3, gone_ids)
    assert why.why.startswith("unknown connector 'gone'")  # one cause, one group
    assert open_ids(bulk_settings) == set(gone_ids)  # still open = selected - resubmitted, exactly
    [summary] = bulk_audits(bulk_settings)
    assert summary.details["stayed_open"] == [{"code": "connector_error", "count": 3, "ids": gone_ids}]
    refused = [e for e in single_audits(bulk_settings) if e.outcome == "refused"]
    assert len(refused) == 3  # each entry's own audit entry, as a single re-submission


def test_entries_failing_alike_make_one_group_whatever_numbers_their_text_holds() -> None:
    """The entry's own id is taken out only where the text names the entry: the same number in a
    path or a line number stays, so two entries failing alike are one group (the path of an
    instance under ``.../run-8/`` made entry 8 a group of its own)."""
    out = BulkResubmitResult()
    for qid in (7, 8):
        _stayed(
            out,
            qid,
            "connector_error",
            f"quarantine entry {qid} stays open: no /srv/run-8/connectors/gone/connector.yaml "
            f"(unit b.csv#resubmit-{qid}:line 8); see sciti quarantine show {qid}",
        )
    [group] = out.reasons
    assert group.ids == [7, 8] and group.count == 2
    assert group.why == (
        "quarantine entry ID stays open: no /srv/run-8/connectors/gone/connector.yaml "
        "(unit b.csv#resubmit-ID:line 8); see sciti quarantine show ID"
    )


def test_a_capped_run_says_where_to_continue_and_the_next_call_takes_only_the_rest(
    bulk_settings: Settings,
) -> None:
    ingest(bulk_settings, 7, "K")  # unfixed: every entry re-submitted is quarantined again (newer)
    sel = Selection(connector="decl")
    first = resubmit_selection(bulk_settings, sel, "engineer", limit=3)
    assert (first.selected, first.taken, first.resubmitted, first.remaining) == (7, 3, 3, 4)
    again = resubmit_selection(
        bulk_settings, sel, "engineer", limit=3, after_id=first.after_id, up_to_id=first.up_to_id
    )
    assert (again.selected, again.taken, again.remaining, again.up_to_id) == (4, 3, 1, first.up_to_id)
    last = resubmit_selection(
        bulk_settings, sel, "engineer", after_id=again.after_id, up_to_id=again.up_to_id
    )
    assert (last.selected, last.resubmitted, last.remaining) == (1, 1, 0)
    assert all(reconciles(d) for d in (first, again, last))
    assert len(open_ids(bulk_settings)) == 7  # the 7 quarantined again, none taken twice
    assert [a.details["resubmitted"] for a in bulk_audits(bulk_settings)] == [1, 3, 3]


def test_a_time_budget_stops_starting_entries(bulk_settings: Settings) -> None:
    ingest(bulk_settings, 3, "T")
    done = resubmit_selection(bulk_settings, Selection(connector="decl"), "engineer", budget=0)
    assert (done.selected, done.taken, done.remaining, done.after_id) == (3, 0, 3, 0)
    assert len(open_ids(bulk_settings)) == 3 and bulk_audits(bulk_settings)[0].details["taken"] == 0


def test_an_entry_discarded_before_the_run_reaches_it_is_closed_meanwhile(
    bulk_settings: Settings,
) -> None:
    ingest(bulk_settings, 4, "M")
    write_connector(bulk_settings, FIXED)
    victim = sorted(open_ids(bulk_settings))[2]
    engine = get_engine(bulk_settings.resolved_ops_db_url)
    fired: list[dict] = []

    def meanwhile(conn, cursor, statement, *args) -> None:
        if not fired and "ORDER BY quarantine.id" in statement:
            fired.append(discard(bulk_settings, victim, "seen first", user="other"))

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        done = resubmit_selection(bulk_settings, Selection(connector="decl"), "engineer")
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert fired
    assert (done.selected, done.resubmitted, done.still_open, done.closed_meanwhile) == (4, 3, 0, 1)
    assert reconciles(done) and open_ids(bulk_settings) == set()
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        kept = s.get(QuarantineRecord, victim)
        assert (kept.status, kept.resolved_by, kept.details["discard_reason"]) == (
            "discarded",
            "other",
            "seen first",
        )


@contextmanager
def discard_while_its_batch_runs(settings: Settings, victim: int) -> Iterator[list[dict]]:
    """Discard ``victim`` as soon as a batch re-submitting it (alone or in a bundle) is registered
    (its rows not yet in)."""
    engine = get_engine(settings.resolved_ops_db_url)
    fired: list[dict] = []

    def meanwhile(conn, cursor, statement, parameters, *args) -> None:
        if (
            not fired
            and statement.lstrip().upper().startswith("INSERT INTO BATCHES")
            and (f"#resubmit-{victim}" in str(parameters) or BUNDLE in str(parameters))
        ):
            fired.append(discard(settings, victim, "resent by the broker", user="other"))

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)


def test_a_discard_while_a_re_submission_runs_stands(bulk_settings: Settings) -> None:
    """The single re-submission closes its entry only if it is still open when its batch is in."""
    ingest(bulk_settings, 1, "S")
    write_connector(bulk_settings, FIXED)
    [victim] = open_ids(bulk_settings)
    with (
        discard_while_its_batch_runs(bulk_settings, victim) as fired,
        pytest.raises(
            AcquireError, match=f"quarantine entry {victim} was discarded by another action while"
        ) as refused,
    ):
        resubmit(bulk_settings, victim, None, user="engineer")
    assert fired
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        kept = s.get(QuarantineRecord, victim)
        assert (kept.status, kept.resolved_by, kept.details["discard_reason"]) == (
            "discarded",
            "other",
            "resent by the broker",
        )
        batch = s.get(Batch, refused.value.details["batch_id"])
        assert (batch.status, batch.stored, batch.resubmission_of) == ("committed", 1, victim)
    [said] = single_audits(bulk_settings)
    assert (said.outcome, said.details["entry_status"]) == ("ok", "discarded")


def test_a_discard_while_the_bulk_run_re_submits_the_entry_is_counted_closed_meanwhile(
    bulk_settings: Settings,
) -> None:
    ingest(bulk_settings, 3, "R")
    write_connector(bulk_settings, FIXED)
    victim = sorted(open_ids(bulk_settings))[1]
    with discard_while_its_batch_runs(bulk_settings, victim) as fired:
        done = resubmit_selection(bulk_settings, Selection(connector="decl"), "engineer")
    assert fired
    assert (done.resubmitted, done.still_open, done.closed_meanwhile) == (2, 0, 1) and reconciles(done)
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        kept = s.get(QuarantineRecord, victim)
        assert (kept.status, kept.resolved_by) == ("discarded", "other")  # not overwritten


@pytest.mark.parametrize(
    ("selection", "kwargs", "words"),
    [
        (Selection(), {}, "the selection is empty"),
        (Selection(connector="  "), {}, "connector is blank"),
        (Selection(connector="decl"), {"limit": 0}, "the limit must be 1 to 100,000"),
        (Selection(connector="decl"), {"after_id": -1}, "after_id and up_to_id are entry ids"),
        (Selection(connector="decl"), {"after_id": 3}, "after_id continues a run and needs its up_to_id"),
    ],
)
def test_a_selection_that_cannot_be_used_is_refused_before_anything(
    bulk_settings: Settings, selection: Selection, kwargs: dict, words: str
) -> None:
    ingest(bulk_settings, 2, "N")
    with pytest.raises(AcquireError, match=words):
        resubmit_selection(bulk_settings, selection, "engineer", **kwargs)
    assert len(open_ids(bulk_settings)) == 2 and bulk_audits(bulk_settings) == []


def test_unknown_ids_refuse_the_run(bulk_settings: Settings) -> None:
    ingest(bulk_settings, 2, "I")
    known = min(open_ids(bulk_settings))
    with pytest.raises(NotFound, match="no quarantine entry 987654") as refused:
        resubmit_selection(bulk_settings, Selection(ids=(known, 987654)), "engineer")
    assert "nothing was re-submitted" in (refused.value.remedy or "")
    assert len(open_ids(bulk_settings)) == 2 and bulk_audits(bulk_settings) == []


# -- the CLI: `sciti quarantine resubmit` takes one ID (as before) or a selection ------------------
@pytest.fixture
def cli(acq_settings: Settings, cli_on, monkeypatch: pytest.MonkeyPatch):
    from sciti.access import create_user

    migrate(acq_settings.resolved_ops_db_url)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        create_user(s, "engineer", ["data_engineer"], service=True)
        create_user(s, "auditor", ["security_officer"], service=True)
    monkeypatch.delenv("SCITI_USER", raising=False)
    return cli_on(acq_settings)


def said(text: str) -> str:
    return " ".join(text.split())


def test_cli_previews_resubmits_and_says_where_to_continue(acq_settings: Settings, cli) -> None:
    batch = ingest(acq_settings, 5, "C")
    write_connector(acq_settings, FIXED)
    base = ("quarantine", "resubmit", "--batch", batch, "--user", "engineer")
    preview = said(cli(*base, "--dry-run"))
    assert "dry run: 5 open entries match; 5 would be re-submitted as quarantined" in preview
    assert "Nothing was changed" in preview and len(open_ids(acq_settings)) == 5

    part = said(cli(*base, "--limit", "2"))
    assert "re-submitted and closed 2" in part and "not reached (the limit) 3" in part
    [summary] = bulk_audits(acq_settings)
    hint = f"continue with --after-id {summary.details['after_id']} --up-to-id {summary.details['up_to_id']}"
    assert f"3 remain: {hint}" in part
    rest = said(cli(*base, *hint.removeprefix("continue with ").split()))
    assert "selected (open when the run began) 3" in rest and "re-submitted and closed 3" in rest
    assert "rows stored by their batches 3" in rest and "remain" not in rest
    assert open_ids(acq_settings) == set()
    assert {(e.actor, e.source) for e in bulk_audits(acq_settings) + single_audits(acq_settings)} == {
        ("engineer", "cli")
    }


def test_cli_says_why_entries_stayed_open_as_text_and_exits_1(acq_settings: Settings, cli) -> None:
    ingest(acq_settings, 2, "E", unit="[bold]late[/].csv")  # a unit name that looks like markup
    typo = {**ITEMS, "fields": {**ITEMS["fields"], "container_id": "containr"}}
    write_connector(acq_settings, {**DECL_CONNECTOR, "outputs": [DECL_CONNECTOR["outputs"][0], typo]})
    ids = sorted(open_ids(acq_settings))
    out = said(cli("quarantine", "resubmit", "--connector", "decl", "--user", "engineer", code=1))
    assert "still open (re-submitted, see why below) 2" in out and "why entries stayed open" in out
    assert f"batch_failed 2 {ids[0]}, {ids[1]}" in out
    assert "[bold]late[/].csv#resubmit-ID: the header has no column 'containr'" in out  # text, not markup
    assert open_ids(acq_settings) == set(ids)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ([], 1, "the selection is empty"),
        (["1", "--connector", "decl"], 1, "pass one entry ID, or a selection without an ID, not both"),
        (["1", "--dry-run"], 1, "not both"),
        (["--connector", "decl", "--file", "x.csv"], 1, "--file and --edit correct one entry"),
        (["--connector", "decl", "--limit", "0"], 1, "the limit must be 1 to 100,000"),
        (["--id", "987654"], 1, "no quarantine entry 987654"),
        (["--after", "yesterday"], 2, "Invalid value for '--after'"),
    ],
)
def test_cli_refuses_what_it_cannot_use_and_changes_nothing(
    acq_settings: Settings, cli, args: list[str], code: int, words: str
) -> None:
    ingest(acq_settings, 2, "D")
    write_connector(acq_settings, FIXED)
    out = cli("quarantine", "resubmit", *args, "--user", "engineer", code=code)
    assert words in said(out)
    assert len(open_ids(acq_settings)) == 2 and bulk_audits(acq_settings) == []


def test_cli_needs_the_permission_and_one_id_is_the_single_resubmit(acq_settings: Settings, cli) -> None:
    ingest(acq_settings, 2, "P")
    write_connector(acq_settings, FIXED)
    lacking = cli("quarantine", "resubmit", "--all", "--user", "auditor", code=1)
    assert "account 'auditor' lacks the quarantine.resubmit permission" in lacking
    first = min(open_ids(acq_settings))
    one = said(cli("quarantine", "resubmit", str(first), "--user", "engineer"))
    assert "1 = 1 + 0 + 0" in one and bulk_audits(acq_settings) == []  # the batches table, as before
    everything = said(cli("quarantine", "resubmit", "--all", "--user", "engineer"))
    assert "re-submitted and closed 1" in everything and open_ids(acq_settings) == set()


def test_one_cause_is_one_group_whatever_the_entry_and_batch_it_names(bulk_settings: Settings) -> None:
    """Entries whose text holds no record (a header alone) give no rows each, with their own id and
    batch in the error: one group, the ids listed beside it."""
    decl_connector(bulk_settings)
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        s.add(
            Batch(
                id="h" * 32, connector="decl", source="decl", unit="empty.csv", fingerprint="h" * 64,
                status="committed", received=2, quarantined=2, started_at=utcnow(), finished_at=utcnow(),
            )
        )  # fmt: skip
        s.flush()
        for n in range(2):
            s.add(
                QuarantineRecord(
                    batch_id="h" * 32, connector="decl", source="decl", locator=f"empty-{n}.csv",
                    reason="the unit holds no record", raw=HEADER + "\n", details={}, status="open",
                    created_at=utcnow(),
                )
            )  # fmt: skip
    ids = sorted(open_ids(bulk_settings))
    done = resubmit_selection(bulk_settings, Selection(batch_id="h" * 32), "engineer")
    assert (done.selected, done.resubmitted, done.still_open) == (2, 0, 2) and reconciles(done)
    [why] = done.reasons
    assert (why.code, why.count, why.ids) == ("acquire_error", 2, ids)
    assert why.why.startswith("quarantine entry ID stays open: the re-submitted text gave no rows (batch …:")
    assert open_ids(bulk_settings) == set(ids)
