"""The quarantined record page shows the content as received, and that read is audited (decision 0099)."""

from __future__ import annotations

from sciti.access import list_entries
from sciti.ops import session_scope


def test_opening_a_quarantined_record_is_an_audited_read(web_settings, as_user, quarantined) -> None:
    page = as_user("dee").get(f"/ui/quarantine/{quarantined}")
    assert page.status_code == 200 and "D1,-5" in page.text  # the raw text, as received
    with session_scope(web_settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, actor="dee", action="quarantine.read", limit=1)
    assert entry.target == f"quarantine:{quarantined}"
    assert "D1,-5" not in str(entry.details)  # who read which entry, never the text


def test_an_unknown_quarantined_record_is_a_page_not_found(as_user) -> None:
    assert as_user("dee").get("/ui/quarantine/987654").status_code == 404


def _open_entry(settings, locator: str) -> int:
    """An open entry of its own (the shared one stays open for the other pages' tests)."""
    from sciti.ops import QuarantineRecord

    with session_scope(settings.resolved_ops_db_url) as s:
        row = QuarantineRecord(
            batch_id="i18n-batch",
            connector="kcs",
            source="kcs",
            locator=locator,
            field="net_mass_kg",
            reason="net_mass_kg: '-7' is less than 0, the smallest allowed",
            raw="declaration_id,net_mass_kg\nD2,-7\n",
            details={},
        )
        s.add(row)
        s.flush()
        return row.id


def test_an_open_record_can_be_discarded_with_a_reason_and_says_who_closed_it(
    web_settings, as_user, quarantined
) -> None:
    """The record page offers what the CLI and the API do: re-submit, or discard with a reason."""
    import re

    record = _open_entry(web_settings, "late.csv:line 3")
    dee = as_user("dee")
    page = dee.get(f"/ui/quarantine/{record}")
    assert f'data-api="/api/v1/quarantine/{record}/discard"' in page.text
    assert 'id="discard-reason" name="reason" required' in page.text
    token = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    done = dee.post(
        f"/api/v1/quarantine/{record}/discard",
        json={"reason": "sent again by the broker as D2 v2"},
        headers={"X-CSRF-Token": token},
    )
    assert done.status_code == 200, done.text
    page = dee.get(f"/ui/quarantine/{record}")
    assert 'id="discard-form"' not in page.text and 'id="corrected"' not in page.text
    assert re.search(r'id="closed-by"><span translate="no">dee</span>', page.text)
    assert "sent again by the broker as D2 v2" in page.text
