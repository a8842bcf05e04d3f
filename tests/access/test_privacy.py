"""The consent register and cross-boundary transfer rules, on SQLite and the real PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from sciti.access import list_entries
from sciti.access.privacy import (
    PrivacyError,
    consent_allows,
    list_consents,
    list_transfer_rules,
    record_consent,
    remove_transfer_rule,
    set_transfer_rule,
    transfer_allowed,
    withdraw_consent,
)
from sciti.errors import NotFound
from sciti.ops import migrate, session_scope

TODAY = date(2026, 11, 22)
USE = {
    "subject_ref": "P:M12345678",
    "holder": "immigration",
    "recipient": "customs-intel",
    "purpose": "smuggling case 17",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request) -> str:
    s = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(s.resolved_ops_db_url)
    return s.resolved_ops_db_url


@pytest.fixture
def sqlite_db(settings) -> str:
    """An unmigrated database: bad input is refused before any table is touched."""
    return settings.resolved_ops_db_url


def test_consent_register(db):
    with session_scope(db) as s:
        assert not consent_allows(s, **USE, on=TODAY)
        row = record_consent(
            s,
            **USE,
            valid_from=date(2026, 11, 1),
            valid_until=date(2026, 12, 31),
            kinds=["passenger"],
            evidence="signed form IMM-2026-881",
            actor="dpo",
        )
        consent_id = row.id
    cases = [
        ({}, True),
        ({"kind": "passenger"}, True),
        ({"kind": "currency_declaration"}, False),  # not covered
        ({"purpose": "another purpose"}, False),
        ({"recipient": "customs-audit"}, False),
        ({"holder": "police"}, False),
        ({"on": date(2027, 1, 1)}, False),  # expired
        ({"on": date(2026, 10, 31)}, False),  # not yet
        ({"holder": "customs-intel"}, True),  # a department's own data needs no consent
    ]
    with session_scope(db) as s:
        for change, expected in cases:
            kw = {**USE, "on": TODAY, **change}
            assert consent_allows(s, **kw) is expected, change
        assert [c.id for c in list_consents(s, subject_ref=USE["subject_ref"])] == [consent_id]
        withdraw_consent(s, consent_id, actor="dpo")
    with session_scope(db) as s:
        assert not consent_allows(s, **USE, on=TODAY)
        row = list_consents(s)[0]
        assert (row.recorded_by, row.withdrawn_by) == ("dpo", "dpo")  # kept, not deleted
        actions = [e.action for e in reversed(list_entries(s, action="consent."))]
        assert actions == ["consent.record", "consent.withdraw"]
        with pytest.raises(NotFound):
            withdraw_consent(s, 999, actor="dpo")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"valid_until": date(2020, 1, 1)}, "before it starts"),
        ({"purpose": " "}, "needs a purpose"),
        ({"kinds": ["nokind"]}, "unknown record kind"),
    ],
)
def test_bad_consents_are_refused(sqlite_db, change, message):
    kw = {**USE, "valid_from": TODAY, "valid_until": date(2027, 1, 1), "actor": "dpo", **change}
    with session_scope(sqlite_db) as s, pytest.raises(PrivacyError, match=message):
        record_consent(s, **kw)


def test_transfer_rules(db):
    with session_scope(db) as s:
        assert not transfer_allowed(s, "declaration", "CN-HK", ["declaration_id"])
        set_transfer_rule(
            s,
            kind="declaration",
            partner="CN-HK",
            fields=["declaration_id", "office_code", "invoice_amount"],
            legal_basis="CMAA art. 3",
            valid_until=date(2027, 6, 30),
            actor="dpo",
        )
    with session_scope(db) as s:
        ok = transfer_allowed(s, "declaration", "CN-HK", ["declaration_id", "invoice_amount"], on=TODAY)
        assert ok and "CMAA" in ok.reason
        no = transfer_allowed(s, "declaration", "CN-HK", ["declaration_id", "declarant_name"], on=TODAY)
        assert not no and no.refused_fields == ("declarant_name",)
        assert not transfer_allowed(s, "declaration", "JP", ["declaration_id"], on=TODAY)
        assert not transfer_allowed(s, "passenger", "CN-HK", ["voyage_id"], on=TODAY)
        assert not transfer_allowed(s, "declaration", "CN-HK", ["declaration_id"], on=date(2027, 7, 1))
        # Setting again replaces the fields (one rule per kind and partner).
        set_transfer_rule(s, kind="declaration", partner="CN-HK", fields=["declaration_id"], actor="dpo")
        assert [r.fields for r in list_transfer_rules(s, partner="CN-HK")] == [["declaration_id"]]
        remove_transfer_rule(s, kind="declaration", partner="CN-HK", actor="dpo")
        assert list_transfer_rules(s) == []
        actions = [e.action for e in reversed(list_entries(s, action="transfer_rule."))]
        assert actions == ["transfer_rule.set", "transfer_rule.set", "transfer_rule.remove"]


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("declaration", ["nosuchfield"], "has no field"),
        ("nokind", ["x"], "unknown record kind"),
        ("declaration", [], "at least one"),
    ],
)
def test_bad_transfer_rules_are_refused(sqlite_db, kind, fields, message):
    with session_scope(sqlite_db) as s, pytest.raises(PrivacyError, match=message):
        set_transfer_rule(s, kind=kind, partner="JP", fields=fields, actor="dpo")
