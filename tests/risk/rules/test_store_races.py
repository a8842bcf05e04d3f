"""Workflow steps on one rule at the same moment, on SQLite and PostgreSQL: exactly one goes through.

Each step runs in its own thread with its own session, as parallel requests do. The losers get
RuleWorkflowError (HTTP 409); the winner leaves one decision and one audit entry. On SQLite a
SELECT ... FOR UPDATE locks nothing, and before this was fixed several approvals of one version
(or an approval and a rejection) all went through.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select

from sciti.ops import session_scope
from sciti.ops.policy_tables import AuditEntry
from sciti.risk import rules
from sciti.settings import Settings
from tests.risk.rules.conftest import UNDERVALUE

RULE_ID = "T-UNDER-01"
ROUNDS = 3  # a race lost once may be won by luck: every round must come out right


def race(settings: Settings, steps: list[Callable]) -> list[str]:
    """Run every step at once, each in its own thread and transaction; 'ok' or the error's name."""
    barrier = threading.Barrier(len(steps))
    outcomes: list[str] = []

    def run(step: Callable) -> None:
        barrier.wait()
        try:
            with session_scope(settings.resolved_ops_db_url) as session:
                step(session)
            outcomes.append("ok")
        except rules.RuleWorkflowError:
            outcomes.append("conflict")
        except Exception as exc:  # anything else is a failure of the test, reported by name
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


_weights = iter(range(41, 10_000))


def draft(settings: Settings, actor: str = "alice") -> int:
    """A new version of the rule (a new text each time), written by ``actor``; its number."""
    text = UNDERVALUE.replace("weight: 40", f"weight: {next(_weights)}")
    with session_scope(settings.resolved_ops_db_url) as session:
        return rules.save_rule(session, text, actor=actor).version


def submitted(settings: Settings) -> int:
    version = draft(settings)
    with session_scope(settings.resolved_ops_db_url) as session:
        rules.submit(session, RULE_ID, version, actor="alice")
    return version


def new_text() -> str:
    return UNDERVALUE.replace("weight: 40", f"weight: {next(_weights)}")


def decisions(settings: Settings, version: int) -> Counter[str]:
    with session_scope(settings.resolved_ops_db_url) as session:
        return Counter(d.decision for d in rules.history(session, RULE_ID).decisions if d.version == version)


def audited(settings: Settings, action: str) -> list[dict]:
    with session_scope(settings.resolved_ops_db_url) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.outcome == "ok")
        )
        return [json.loads(r.details) for r in rows]


def status(settings: Settings, version: int) -> tuple[str, int | None]:
    with session_scope(settings.resolved_ops_db_url) as session:
        row = rules.get_version(session, RULE_ID, version)
        return row.status, rules.get_rule(session, RULE_ID).effective_version


def approve(who: str, version: int) -> Callable:
    return lambda session: rules.approve(session, RULE_ID, version, actor=who)


def reject(who: str, version: int) -> Callable:
    return lambda session: rules.reject(session, RULE_ID, version, actor=who)


def test_parallel_approvals_of_one_version_approve_it_once(rules_db) -> None:
    for _ in range(ROUNDS):
        version = submitted(rules_db)
        outcomes = race(rules_db, [approve(("bob", "carol")[i % 2], version) for i in range(6)])
        assert sorted(outcomes) == ["conflict"] * 5 + ["ok"], outcomes
        assert status(rules_db, version) == ("approved", version)
        assert decisions(rules_db, version)["approve"] == 1
    approvals = audited(rules_db, "rule.approve")
    assert sorted(d["version"] for d in approvals) == list(range(1, ROUNDS + 1))
    with session_scope(rules_db.resolved_ops_db_url) as session:
        assert rules.rules_generation(session, "declaration") == ROUNDS  # one bump per real approval
        versions = rules.history(session, RULE_ID).versions
        assert [v.status for v in versions] == ["replaced"] * (ROUNDS - 1) + ["approved"]


def test_an_approval_and_a_rejection_at_once_leave_one_decision(rules_db) -> None:
    decided = []
    for _ in range(ROUNDS):
        version = submitted(rules_db)
        decided.append(version)
        outcomes = race(rules_db, [approve("bob", version), reject("carol", version)] * 4)
        assert sorted(outcomes) == ["conflict"] * 7 + ["ok"], outcomes
        made = decisions(rules_db, version)
        assert made["approve"] + made["reject"] == 1, made
        final, effective = status(rules_db, version)
        # What the winner was told is what happened: approved and in effect, or rejected and not.
        if made["approve"]:
            assert (final, effective) == ("approved", version)
        else:
            assert final == "rejected" and effective != version
    entries = audited(rules_db, "rule.approve") + audited(rules_db, "rule.reject")
    assert sorted(d["version"] for d in entries) == decided


def test_parallel_submissions_of_one_draft_submit_it_once(rules_db) -> None:
    drafted = []
    for _ in range(ROUNDS):
        version = draft(rules_db)
        drafted.append(version)
        steps = [lambda session, v=version: rules.submit(session, RULE_ID, v, actor="alice")] * 6
        outcomes = race(rules_db, steps)
        assert sorted(outcomes) == ["conflict"] * 5 + ["ok"], outcomes
        assert decisions(rules_db, version)["submit"] == 1
        assert status(rules_db, version)[0] == "submitted"
    assert sorted(d["version"] for d in audited(rules_db, "rule.submit")) == drafted


def test_versions_stored_at_once_are_numbered_once_and_supersede_each_other(rules_db) -> None:
    submitted(rules_db)
    steps = [lambda session, t=new_text(): rules.save_rule(session, t, actor="carol") for _ in range(5)]
    outcomes = race(rules_db, steps)
    assert outcomes == ["ok"] * 5, outcomes  # one after the other, each a new version
    with session_scope(rules_db.resolved_ops_db_url) as session:
        h = rules.history(session, RULE_ID)
        assert h.rule.latest_version == 6 and [v.version for v in h.versions] == [1, 2, 3, 4, 5, 6]
        # Only the newest is pending; every older one was superseded, once.
        assert [v.status for v in h.versions] == ["superseded"] * 5 + ["draft"]
        superseded = Counter(d.version for d in h.decisions if d.decision == "supersede")
        assert superseded == dict.fromkeys(range(1, 6), 1)
        assert [d["version"] for d in audited(rules_db, "rule.version")] == [2, 3, 4, 5, 6]


def test_a_new_version_and_a_decision_at_once_agree_on_what_happened(rules_db) -> None:
    for _ in range(ROUNDS):
        version = submitted(rules_db)
        store = lambda session, t=new_text(): rules.save_rule(session, t, actor="carol")  # noqa: E731
        outcomes = race(rules_db, [approve("bob", version), store])
        made = decisions(rules_db, version)
        final, effective = status(rules_db, version)
        # The new version always goes in; the approval only if it came first. Either way the
        # version is in one state, with the one decision that put it there.
        if final == "approved":
            assert sorted(outcomes) == ["ok", "ok"] and effective == version
            assert made["approve"] == 1 and made["supersede"] == 0, made
        else:
            assert sorted(outcomes) == ["conflict", "ok"] and final == "superseded", (outcomes, final)
            assert made["supersede"] == 1 and made["approve"] == 0, made
            assert effective != version


def test_two_people_creating_one_rule_at_once_make_one_rule(rules_db) -> None:
    steps = [lambda session: rules.create_rule(session, UNDERVALUE, actor="alice")] * 4
    outcomes = race(rules_db, steps)
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"], outcomes
    with session_scope(rules_db.resolved_ops_db_url) as session:
        h = rules.history(session, RULE_ID)
        assert [v.version for v in h.versions] == [1] and [d.decision for d in h.decisions] == ["create"]
