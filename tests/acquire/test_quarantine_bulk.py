"""Discarding a selection of quarantine entries at once (decision 0110), on SQLite and PostgreSQL.

Entries come from real ingests (declaration rows with a bad amount, through the connector) and,
for the selections by connector, source and time, from rows written as the runner writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import event, select

from sciti.access import list_entries
from sciti.access.audit import verify
from sciti.acquire import Runner, list_quarantine
from sciti.acquire.errors import AcquireError
from sciti.acquire.quarantine import discard
from sciti.acquire.quarantine_bulk import Selection, discard_selection, selection_problems
from sciti.errors import NotFound
from sciti.ops import Batch, QuarantineRecord, migrate, session_scope
from sciti.ops.db import get_engine
from sciti.settings import Settings
from tests.acquire.conftest import HEADER, decl_connector
from tests.conftest import make_settings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


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


def bad_rows(n: int, tag: str) -> bytes:
    """A unit of ``n`` declaration rows whose amount is not a number: ``n`` entries."""
    lines = [f"{tag}-{i},2024-07-01,KRPUS,x{i},USD,851713," for i in range(n)]
    return (HEADER + "\n" + "\n".join(lines) + "\n").encode()


def ingest(settings: Settings, n: int, tag: str) -> str:
    result = Runner(settings).ingest_bytes(decl_connector(settings), bad_rows(n, tag), f"{tag}.csv")
    assert result.quarantined == n
    return result.batch_id


def add_entries(
    settings: Settings, batch: str, connector: str, source: str, times: list[datetime], reason: str
):
    """Entries as the runner writes them, at the given times (a feed quarantined over days)."""
    with session_scope(settings.resolved_ops_db_url) as s:
        s.add(
            Batch(
                id=batch, connector=connector, source=source, unit=f"{batch}.csv", fingerprint=batch,
                status="committed", received=len(times), quarantined=len(times), started_at=T0,
                finished_at=T0,
            )
        )  # fmt: skip
        s.flush()
        for n, at in enumerate(times):
            s.add(
                QuarantineRecord(
                    batch_id=batch, connector=connector, source=source, locator=f"{batch}.csv:line {n + 2}",
                    field="amount", reason=reason, raw=f"h\n{batch}-{n}\n", details={"n": n},
                    status="open", created_at=at,
                )
            )  # fmt: skip


def open_ids(settings: Settings) -> set[int]:
    return {e["id"] for e in list_quarantine(settings, status="open", limit=100_000)}


def bulk_audits(settings: Settings) -> list:
    with session_scope(settings.resolved_ops_db_url) as s:
        return [e for e in list_entries(s, action="quarantine.discard") if e.details.get("bulk")]


@pytest.fixture
def world(bulk_settings: Settings) -> dict[str, object]:
    """Two feeds' worth of entries: acme (3 days, 2 causes), zeta (one day)."""
    days = [T0 + timedelta(days=d) for d in range(3)]
    add_entries(bulk_settings, "acme-1", "acme", "acme-src", days, "amount: 'x' is not a number")
    add_entries(bulk_settings, "acme-2", "acme", "acme-src", days, "hs_code: 99_99% is no subheading")
    add_entries(bulk_settings, "zeta-1", "zeta", "zeta-src", days[:2], "amount: 'x' is not a number")
    return {"days": days}


def selected(settings: Settings) -> dict[str, dict[int, int]]:
    """Per batch: entry id -> the day it was quarantined (0, 1, 2 after T0)."""
    with session_scope(settings.resolved_ops_db_url) as s:
        rows = s.execute(
            select(QuarantineRecord.id, QuarantineRecord.batch_id, QuarantineRecord.details)
        ).all()
    out: dict[str, dict[int, int]] = {}
    for i, b, d in rows:
        out.setdefault(b, {})[i] = d["n"]
    return out


@pytest.mark.parametrize(
    ("selection", "batches", "picked"),
    [
        (Selection(connector="acme"), ["acme-1", "acme-2"], None),
        (Selection(source="zeta-src"), ["zeta-1"], None),
        (Selection(batch_id="acme-2"), ["acme-2"], None),
        (Selection(reason_contains="is not a number"), ["acme-1", "zeta-1"], None),
        # % and _ are the reason's own characters, not wildcards
        (Selection(reason_contains="99_99%"), ["acme-2"], None),
        (Selection(reason_contains="99x99"), [], None),
        (Selection(connector="acme", reason_contains="not a number"), ["acme-1"], None),
        (Selection(received_after=T0 + timedelta(days=1)), ["acme-1", "acme-2", "zeta-1"], (1, 2)),
        (Selection(received_before=T0 + timedelta(days=1)), ["acme-1", "acme-2", "zeta-1"], (0,)),
        (
            Selection(
                connector="acme",
                received_after=T0 + timedelta(hours=1),
                received_before=T0 + timedelta(days=2),
            ),
            ["acme-1", "acme-2"],
            (1,),
        ),
        (Selection(everything=True), ["acme-1", "acme-2", "zeta-1"], None),
    ],
    ids=lambda v: str(v) if isinstance(v, Selection) else None,
)
def test_a_selection_discards_exactly_the_open_entries_it_names(
    bulk_settings: Settings, world, selection: Selection, batches: list[str], picked
) -> None:
    by_batch = selected(bulk_settings)
    want: set[int] = set()
    for b in batches:
        want |= {i for i, day in by_batch[b].items() if picked is None or day in picked}
    before = open_ids(bulk_settings)

    preview = discard_selection(bulk_settings, selection, "bad feed", "engineer", dry_run=True)
    assert (preview.matched, preview.closed, preview.remaining) == (len(want), len(want), 0)
    assert open_ids(bulk_settings) == before  # a dry run changes nothing, and is not audited
    assert bulk_audits(bulk_settings) == []

    done = discard_selection(bulk_settings, selection, "bad feed", "engineer", source="cli")
    assert (done.matched, done.closed, done.skipped, done.remaining) == (len(want), len(want), 0, 0)
    assert open_ids(bulk_settings) == before - want


def test_each_entry_keeps_the_reason_and_one_audit_entry_holds_the_selection_and_counts(
    bulk_settings: Settings,
) -> None:
    batch = ingest(bulk_settings, 25, "F")
    other = ingest(bulk_settings, 2, "G")
    reason = "the broker's system sent amounts as text; resent as batch 2026-03-02"
    done = discard_selection(bulk_settings, Selection(batch_id=batch), reason, "engineer", source="10.0.0.9")
    assert (done.matched, done.closed, done.already_closed) == (25, 25, 0)
    mine = [e for e in list_quarantine(bulk_settings, limit=1000) if e["batch_id"] == batch]
    assert {e["status"] for e in mine} == {"discarded"}
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        rows = s.scalars(select(QuarantineRecord).where(QuarantineRecord.batch_id == batch)).all()
        assert {(r.resolved_by, r.details["discard_reason"], r.details["discarded_with"]) for r in rows} == {
            ("engineer", reason, done.audit_ref)
        }
        assert all(r.resolved_at is not None and r.details["problems"] for r in rows)  # details kept
    assert {e["status"] for e in list_quarantine(bulk_settings) if e["batch_id"] == other} == {"open"}

    [entry] = bulk_audits(bulk_settings)
    assert (entry.actor, entry.source, entry.outcome) == ("engineer", "10.0.0.9", "ok")
    assert entry.target == f"quarantine:selection:{done.audit_ref}"
    assert entry.details["selection"] == {"batch_id": batch}
    assert {k: entry.details[k] for k in ("matched", "closed", "skipped", "remaining", "already_closed")} == {
        "matched": 25,
        "closed": 25,
        "skipped": 0,
        "remaining": 0,
        "already_closed": 0,
    }
    text = orjson.dumps(entry.details).decode()
    assert "KRPUS" not in text and "x1" not in text and "broker" not in text  # no raw text, no reason
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        assert verify(s).ok
        singles = [e for e in list_entries(s, action="quarantine.discard") if not e.details.get("bulk")]
    assert singles == []  # one entry for the action, not one per entry


def test_a_second_call_closes_nothing_and_says_so(bulk_settings: Settings) -> None:
    batch = ingest(bulk_settings, 4, "H")
    first = discard_selection(bulk_settings, Selection(batch_id=batch), "resent", "engineer")
    again = discard_selection(bulk_settings, Selection(batch_id=batch), "resent", "engineer")
    assert (first.closed, first.already_closed) == (4, 0)
    assert (again.matched, again.closed, again.already_closed) == (0, 0, 4)
    assert [a.details["closed"] for a in bulk_audits(bulk_settings)] == [0, 4]  # newest first


def test_a_call_is_capped_and_says_how_many_remain(bulk_settings: Settings) -> None:
    batch = ingest(bulk_settings, 7, "K")
    preview = discard_selection(bulk_settings, Selection(batch_id=batch), "r", "e", dry_run=True, limit=3)
    assert (preview.matched, preview.closed, preview.remaining) == (7, 3, 4)
    runs = [discard_selection(bulk_settings, Selection(batch_id=batch), "r", "e", limit=3) for _ in range(3)]
    assert [(r.matched, r.closed, r.remaining) for r in runs] == [(7, 3, 4), (4, 3, 1), (1, 1, 0)]
    assert open_ids(bulk_settings) == set()


def test_explicit_ids_take_only_those_and_unknown_ids_are_refused(bulk_settings: Settings) -> None:
    ingest(bulk_settings, 5, "L")
    ids = sorted(open_ids(bulk_settings))
    discard(bulk_settings, ids[0], "one by one", user="engineer")
    with pytest.raises(NotFound, match="no quarantine entry 987654"):
        discard_selection(bulk_settings, Selection(ids=(ids[1], 987654)), "r", "engineer")
    assert len(open_ids(bulk_settings)) == 4  # nothing was discarded
    done = discard_selection(bulk_settings, Selection(ids=(ids[0], ids[1], ids[2])), "r", "engineer")
    assert (done.matched, done.closed, done.already_closed) == (2, 2, 1)
    assert open_ids(bulk_settings) == set(ids[3:])


def test_an_entry_discarded_by_another_action_during_the_call_is_skipped(bulk_settings: Settings) -> None:
    """A single discard commits between the bulk call's count and its first write."""
    batch = ingest(bulk_settings, 6, "M")
    victim = sorted(open_ids(bulk_settings))[3]
    engine = get_engine(bulk_settings.resolved_ops_db_url)
    fired: list[dict] = []

    def meanwhile(conn, cursor, statement, *args) -> None:
        if not fired and "ORDER BY quarantine.id" in statement:
            fired.append(discard(bulk_settings, victim, "seen first", user="other"))

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        done = discard_selection(bulk_settings, Selection(batch_id=batch), "bad feed", "engineer")
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert fired and fired[0]["status"] == "discarded"
    assert (done.matched, done.closed, done.skipped, done.remaining) == (6, 5, 1, 0)
    with session_scope(bulk_settings.resolved_ops_db_url) as s:
        first = s.get(QuarantineRecord, victim)
        assert (first.resolved_by, first.details["discard_reason"]) == ("other", "seen first")  # it stands
    assert bulk_audits(bulk_settings)[0].details["skipped"] == 1


@pytest.mark.parametrize(
    ("selection", "field"),
    [
        (Selection(), "all"),
        (Selection(connector="  "), "connector"),
        (Selection(batch_id="b" * 41), "batch_id"),
        (Selection(reason_contains="r" * 201), "reason_contains"),
        (Selection(ids=(0,)), "ids"),
        (Selection(received_after=T0, received_before=T0), "received_before"),
    ],
)
def test_a_selection_that_cannot_be_used_is_refused_before_anything(
    bulk_settings: Settings, selection: Selection, field: str
) -> None:
    ingest(bulk_settings, 2, "N")
    assert [f for f, _ in selection_problems(selection)] == [field]
    with pytest.raises(AcquireError, match="the quarantine selection cannot be used"):
        discard_selection(bulk_settings, selection, "r", "engineer")
    assert len(open_ids(bulk_settings)) == 2 and bulk_audits(bulk_settings) == []


@pytest.mark.parametrize(
    ("reason", "words"), [("  ", "a reason is required"), ("r" * 2001, "longer than 2000")]
)
def test_a_reason_is_required_and_bounded(bulk_settings: Settings, reason: str, words: str) -> None:
    batch = ingest(bulk_settings, 2, "P")
    with pytest.raises(AcquireError, match=words):
        discard_selection(bulk_settings, Selection(batch_id=batch), reason, "engineer")
    assert len(open_ids(bulk_settings)) == 2


# -- the CLI: `sciti quarantine discard` takes one id or a selection ------------------------------
@pytest.fixture
def cli(acq_settings: Settings, cli_on, monkeypatch: pytest.MonkeyPatch):
    from sciti.access import create_user

    migrate(acq_settings.resolved_ops_db_url)
    with session_scope(acq_settings.resolved_ops_db_url) as s:
        create_user(s, "engineer", ["data_engineer"], service=True)
        create_user(s, "auditor", ["security_officer"], service=True)
    monkeypatch.delenv("SCITI_USER", raising=False)
    return cli_on(acq_settings)


def test_cli_previews_discards_and_says_so_again(acq_settings: Settings, cli) -> None:
    batch = ingest(acq_settings, 5, "C")
    ingest(acq_settings, 2, "D")
    base = ("quarantine", "discard", "--batch", batch, "--reason", "resent as v2", "--user", "engineer")
    preview = " ".join(cli(*base, "--dry-run").split())
    assert "dry run: 5 open entries match; 5 would be discarded, 0 would remain" in preview
    assert "Nothing was changed" in preview and len(open_ids(acq_settings)) == 7

    capped = " ".join(cli(*base, "--limit", "3").split())
    assert "discarded 3 of 5 open entries matching" in capped and "2 remain open: run it again" in capped
    rest = " ".join(cli(*base).split())
    assert "discarded 2 of 2 open entries matching" in rest and "3 already closed" in rest
    again = " ".join(cli(*base).split())
    assert "discarded 0 of 0 open entries matching" in again and "5 already closed" in again
    assert len(open_ids(acq_settings)) == 2
    assert [(a.actor, a.source) for a in bulk_audits(acq_settings)] == [("engineer", "cli")] * 3

    # several ids are a selection too; one id is the single discard, as before
    left = sorted(open_ids(acq_settings))
    one = cli("quarantine", "discard", str(left[0]), "--reason", "r", "--user", "engineer")
    assert f"quarantine entry {left[0]} discarded" in one
    both = " ".join(cli("quarantine", "discard", *map(str, left), "-r", "r", "-u", "engineer").split())
    assert "discarded 1 of 1 open entries matching" in both and "1 already closed" in both


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--reason", "r"], 1, "the selection is empty"),
        (["--connector", "decl"], 1, "a reason is required"),
        (["--connector", "decl", "--reason", " "], 1, "a reason is required"),
        (["--after", "yesterday", "--reason", "r"], 2, "Invalid value for '--after'"),
        (["--connector", "decl", "--after", "2026-03-02", "--before", "2026-03-01", "--reason", "r"], 1,
         "received_before must be later than received_after"),
        (["--connector", "decl", "--reason", "r", "--limit", "50001"], 1, "the limit must be 1 to 50,000"),
        (["987654", "555", "--reason", "r"], 1, "no quarantine entry 555, 987654"),
    ],
)  # fmt: skip
def test_cli_refuses_what_it_cannot_use_and_changes_nothing(
    acq_settings: Settings, cli, args: list[str], code: int, words: str
) -> None:
    ingest(acq_settings, 2, "E")
    said = cli("quarantine", "discard", *args, "--user", "engineer", code=code)
    assert words in " ".join(said.split())
    assert len(open_ids(acq_settings)) == 2 and bulk_audits(acq_settings) == []


def test_cli_needs_the_permission_and_all_takes_everything(acq_settings: Settings, cli) -> None:
    ingest(acq_settings, 3, "A")
    lacking = cli("quarantine", "discard", "--all", "--reason", "reset", "--user", "auditor", code=1)
    assert "account 'auditor' lacks the quarantine.resubmit permission" in lacking
    assert len(open_ids(acq_settings)) == 3
    done = " ".join(cli("quarantine", "discard", "--all", "--reason", "reset", "--user", "engineer").split())
    assert "discarded 3 of 3" in done and open_ids(acq_settings) == set()
