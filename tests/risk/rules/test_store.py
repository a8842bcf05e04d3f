"""Versions, the four-eyes workflow, history, diffs and the rules in effect, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sciti.ops import session_scope
from sciti.risk import rules
from tests.risk.rules.conftest import UNDERVALUE


def scope(s):
    return session_scope(s.resolved_ops_db_url)


def test_a_rule_takes_effect_only_after_a_second_person_approves(rules_db) -> None:
    with scope(rules_db) as session:
        v1 = rules.create_rule(session, UNDERVALUE, actor="alice", comment="first cut")
        assert (v1.version, v1.status, v1.author) == (1, "draft", "alice")
        assert rules.active_rules(session, "declaration") == []
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
        assert rules.active_rules(session, "declaration") == []
    with scope(rules_db) as session, pytest.raises(rules.FourEyesViolation):
        rules.approve(session, "T-UNDER-01", 1, actor="alice")
    with scope(rules_db) as session, pytest.raises(rules.FourEyesViolation, match="may not rules.approve"):
        rules.approve(session, "T-UNDER-01", 1, actor="vic")
    with scope(rules_db) as session:
        approved = rules.approve(session, "T-UNDER-01", 1, actor="bob", comment="checked the dry-run")
        assert (approved.status, approved.decided_by) == ("approved", "bob")
        (active,) = rules.active_rules(session, "declaration")
        assert (active.rule_id, active.version, active.weight, active.lane) == ("T-UNDER-01", 1, 40.0, None)
        assert active.matches({"unit_value_ratio": 0.2, "aeo": False})
        assert not active.matches({"unit_value_ratio": 0.2, "aeo": None})  # unknown is not a hit
        assert active.reason({"unit_value_ratio": 0.2}) == "Unit value 20% of reference"


def test_an_author_who_may_approve_still_cannot_approve_their_own(rules_db) -> None:
    with scope(rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="carol")
        rules.submit(session, "T-UNDER-01", 1, actor="carol")
    with scope(rules_db) as session, pytest.raises(rules.FourEyesViolation, match="cannot approve"):
        rules.approve(session, "T-UNDER-01", 1, actor="carol")
    with scope(rules_db) as session, pytest.raises(rules.FourEyesViolation, match="cannot reject") as refused:
        rules.reject(session, "T-UNDER-01", 1, actor="carol")
    assert (
        refused.value.remedy
        == "a different user holding the rules.approve permission must reject this version"
    )
    with scope(rules_db) as session:
        assert rules.approve(session, "T-UNDER-01", 1, actor="bob").status == "approved"


def test_rule_times_read_back_are_utc_aware(rules_db) -> None:
    """SQLite gives stored times back without their zone; every rule time is UTC all the same."""
    with scope(rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
        rules.approve(session, "T-UNDER-01", 1, actor="bob")
    with scope(rules_db) as session:
        found = rules.history(session, "T-UNDER-01")
        times = [found.rule.created_at, *(v.created_at for v in found.versions)]
        times += [found.versions[0].decided_at, *(d.at for d in found.decisions)]
        assert all(
            t is not None and t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in times
        )
        assert not session.dirty  # made aware as loaded, not changed


def test_the_not_author_refusal_names_the_author_plainly(sqlite_rules_db) -> None:
    with scope(sqlite_rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
    with scope(sqlite_rules_db) as session, pytest.raises(rules.NotTheAuthor) as refused:
        rules.submit(session, "T-UNDER-01", 1, actor="carol")
    assert "was written by 'alice': only its author submits it" in str(refused.value)
    assert "''s" not in str(refused.value)


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([("approve", "bob")], rules.RuleWorkflowError),  # a draft must be submitted first
        ([("submit", "alice"), ("submit", "alice")], rules.RuleWorkflowError),
        ([("submit", "bob")], rules.FourEyesViolation),  # a supervisor does not hold rules.write
        ([("submit", "alice"), ("reject", "bob"), ("approve", "carol")], rules.RuleWorkflowError),
        ([("submit", "nobody")], rules.FourEyesViolation),
        ([("submit", "carol")], rules.NotTheAuthor),  # alice's draft: carol may write, not submit it
    ],
)
def test_workflow_refusals(sqlite_rules_db, steps, error) -> None:
    with scope(sqlite_rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
    *ok, last = steps
    for step, who in ok:
        with scope(sqlite_rules_db) as session:
            getattr(rules, step)(session, "T-UNDER-01", 1, actor=who)
    with scope(sqlite_rules_db) as session, pytest.raises(error):
        getattr(rules, last[0])(session, "T-UNDER-01", 1, actor=last[1])


def test_versions_history_diff_and_retirement(rules_db) -> None:
    with scope(rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
        rules.approve(session, "T-UNDER-01", 1, actor="bob")
        generation = rules.rules_generation(session, "declaration")
        v2 = rules.new_version(
            session, "T-UNDER-01", UNDERVALUE.replace("30%", "25%"), actor="carol", comment="tighter"
        )
        assert v2.version == 2 and v2.author == "carol"
        # Version 1 stays in effect until version 2 is approved.
        assert [r.version for r in rules.active_rules(session, "declaration")] == [1]
        with pytest.raises(rules.RuleWorkflowError, match="already says exactly this"):
            rules.new_version(session, "T-UNDER-01", UNDERVALUE.replace("30%", "25%"), actor="alice")
        rules.new_version(session, "T-UNDER-01", UNDERVALUE.replace("30%", "20%"), actor="alice")
        assert rules.get_version(session, "T-UNDER-01", 2).status == "superseded"
        rules.submit(session, "T-UNDER-01", 3, actor="alice")
        rules.approve(session, "T-UNDER-01", 3, actor="carol")
        assert rules.rules_generation(session, "declaration") > generation
        (active,) = rules.active_rules(session, "declaration")
        assert active.version == 3 and not active.matches({"unit_value_ratio": 0.22, "aeo": False})
        assert rules.get_version(session, "T-UNDER-01", 1).status == "replaced"

        diff = rules.diff(session, "T-UNDER-01", 1, 3)
        assert "-when: unit_value_ratio < 30% and not aeo" in diff
        assert "+when: unit_value_ratio < 20% and not aeo" in diff
        assert rules.diff(session, "T-UNDER-01", 3, 3) == ""

        retired = rules.retire(session, "T-UNDER-01", actor="alice", comment="no longer useful")
        assert (retired.version, retired.enabled) == (4, False)
        rules.submit(session, "T-UNDER-01", 4, actor="alice")
        assert len(rules.active_rules(session, "declaration")) == 1  # retiring needs approval too
        rules.approve(session, "T-UNDER-01", 4, actor="bob")
        assert rules.active_rules(session, "declaration") == []

        h = rules.history(session, "T-UNDER-01")
        assert [v.status for v in h.versions] == ["replaced", "superseded", "replaced", "approved"]
        assert [(d.version, d.decision, d.actor) for d in h.decisions] == [
            (1, "create", "alice"),
            (1, "submit", "alice"),
            (1, "approve", "bob"),
            (2, "create", "carol"),
            (2, "supersede", "alice"),
            (3, "create", "alice"),
            (3, "submit", "alice"),
            (3, "approve", "carol"),
            (4, "create", "alice"),
            (4, "submit", "alice"),
            (4, "approve", "bob"),
        ]


def test_validity_period_and_kind_decide_what_is_active(sqlite_rules_db) -> None:
    timed = UNDERVALUE + "valid_from: 2026-03-01\nvalid_to: 2026-04-01\n"
    with scope(sqlite_rules_db) as session:
        rules.create_rule(session, timed, actor="alice")
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
        rules.approve(session, "T-UNDER-01", 1, actor="bob")
        at = lambda *d: datetime(*d, tzinfo=UTC)  # noqa: E731
        assert rules.active_rules(session, "declaration", at(2026, 2, 28, 23, 59)) == []
        assert len(rules.active_rules(session, "declaration", at(2026, 3, 1))) == 1
        assert len(rules.active_rules(session, "declaration", at(2026, 3, 31, 23))) == 1
        assert rules.active_rules(session, "declaration", at(2026, 4, 1)) == []
        assert rules.active_rules(session, "passenger", at(2026, 3, 15)) == []


def test_compiled_rules_are_cached_until_the_generation_changes(sqlite_rules_db) -> None:
    with scope(sqlite_rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
        rules.approve(session, "T-UNDER-01", 1, actor="bob")
        first = rules.active_rules(session, "declaration")
        assert rules.active_rules(session, "declaration")[0] is first[0]
    with scope(sqlite_rules_db) as session:  # another process's change is seen through the generation
        rules.new_version(
            session, "T-UNDER-01", UNDERVALUE.replace("weight: 40", "weight: 60"), actor="alice"
        )
        rules.submit(session, "T-UNDER-01", 2, actor="alice")
        rules.approve(session, "T-UNDER-01", 2, actor="bob")
    with scope(sqlite_rules_db) as session:
        (now,) = rules.active_rules(session, "declaration")
        assert (now.version, now.weight) == (2, 60.0)


def test_the_starter_rules_load_as_drafts(sqlite_rules_db) -> None:
    with scope(sqlite_rules_db) as session:
        for text in rules.starter_rule_texts().values():
            assert rules.save_rule(session, text, actor="alice").status == "draft"
        assert len(rules.list_rules(session)) == len(rules.starter_rule_texts()) >= 7


def test_a_rule_that_no_longer_compiles_is_skipped_not_fatal(sqlite_rules_db, caplog) -> None:
    """A feature renamed after approval must not stop the engine from running the other rules."""
    other = UNDERVALUE.replace("T-UNDER-01", "T-OTHER-01")
    with scope(sqlite_rules_db) as session:
        for text, rule_id in ((UNDERVALUE, "T-UNDER-01"), (other, "T-OTHER-01")):
            rules.create_rule(session, text, actor="alice")
            rules.submit(session, rule_id, 1, actor="alice")
            rules.approve(session, rule_id, 1, actor="bob")
        row = rules.get_version(session, "T-OTHER-01", 1)
        row.text = row.text.replace("unit_value_ratio <", "retired_feature <")
        row.text_sha256 = "changed"
        rules.bump_generation(session, "declaration")
    with scope(sqlite_rules_db) as session:
        assert [r.rule_id for r in rules.active_rules(session, "declaration")] == ["T-UNDER-01"]
    assert "T-OTHER-01 version 1 no longer compiles" in caplog.text


@pytest.mark.postgres
def test_two_approvers_at_once_approve_a_version_only_once(pg_settings) -> None:
    import threading

    from sciti.ops import migrate
    from tests.risk.rules.conftest import add_people

    migrate(pg_settings.resolved_ops_db_url)
    add_people(pg_settings)
    with scope(pg_settings) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
        rules.submit(session, "T-UNDER-01", 1, actor="alice")
    barrier, outcomes = threading.Barrier(2), []

    def approve(who: str) -> None:
        barrier.wait()
        try:
            with scope(pg_settings) as session:
                rules.approve(session, "T-UNDER-01", 1, actor=who)
            outcomes.append("approved")
        except rules.RuleWorkflowError:
            outcomes.append("refused")

    threads = [threading.Thread(target=approve, args=(who,)) for who in ("bob", "carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "refused"]
    with scope(pg_settings) as session:
        decisions = [d.decision for d in rules.history(session, "T-UNDER-01").decisions]
        assert decisions.count("approve") == 1 and rules.rules_generation(session, "declaration") == 1


PASSPORT_RULE = """\
id: T-PAX-DOC-01
title: A known passport
kind: passenger
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def without_unmask(monkeypatch) -> None:
    """Roles as if none of them granted personal.unmask (the standard roles that write rules do)."""
    real = rules.store.permissions_of
    monkeypatch.setattr(rules.store, "permissions_of", lambda roles: real(roles) - {"personal.unmask"})


def test_only_people_who_may_read_a_field_in_clear_write_or_approve_a_rule_naming_it(
    sqlite_rules_db, monkeypatch
) -> None:
    """A rule naming a personal field is a standing lookup of it (decision 0080)."""
    from sciti.access import list_entries

    without_unmask(monkeypatch)
    with scope(sqlite_rules_db) as session, pytest.raises(rules.ProtectedFieldsRefused) as refused:
        rules.save_rule(session, PASSPORT_RULE, actor="alice")
    assert refused.value.details == {
        "fields": ["document_number"],
        "permissions": ["personal.unmask"],
        "step": "write",
    }
    assert "G352540" not in str(refused.value)
    monkeypatch.undo()
    with scope(sqlite_rules_db) as session:
        rules.save_rule(session, PASSPORT_RULE, actor="alice")
        rules.submit(session, "T-PAX-DOC-01", 1, actor="alice")
    without_unmask(monkeypatch)
    with scope(sqlite_rules_db) as session, pytest.raises(rules.ProtectedFieldsRefused, match="approve"):
        rules.approve(session, "T-PAX-DOC-01", 1, actor="bob")
    monkeypatch.undo()
    with scope(sqlite_rules_db) as session:
        assert rules.approve(session, "T-PAX-DOC-01", 1, actor="bob").status == "approved"
        (created,) = [e for e in list_entries(session, action="rule.create")]
        assert created.details["protected_fields"] == {"personal": ["document_number"]}
    # Switching it off reads nothing: no permission needed to write or approve the retirement.
    without_unmask(monkeypatch)
    with scope(sqlite_rules_db) as session:
        retired = rules.retire(session, "T-PAX-DOC-01", actor="alice")
        rules.submit(session, "T-PAX-DOC-01", retired.version, actor="alice")
        assert rules.approve(session, "T-PAX-DOC-01", retired.version, actor="bob").status == "approved"


def test_only_the_author_submits_a_draft_and_anyone_else_drafts_their_own(sqlite_rules_db) -> None:
    with scope(sqlite_rules_db) as session:
        rules.create_rule(session, UNDERVALUE, actor="alice")
    with scope(sqlite_rules_db) as session, pytest.raises(rules.NotTheAuthor) as refused:
        rules.submit(session, "T-UNDER-01", 1, actor="carol")
    assert refused.value.http_status == 403 and refused.value.details == {"author": "alice"}
    assert (
        "only its author submits it" in refused.value.message and "your own version" in refused.value.remedy
    )
    with scope(sqlite_rules_db) as session:
        assert rules.get_version(session, "T-UNDER-01", 1).status == "draft"
        mine = rules.new_version(session, "T-UNDER-01", UNDERVALUE.replace("30%", "25%"), actor="carol")
        assert rules.submit(session, "T-UNDER-01", mine.version, actor="carol").status == "submitted"
        assert rules.approve(session, "T-UNDER-01", mine.version, actor="bob").status == "approved"
