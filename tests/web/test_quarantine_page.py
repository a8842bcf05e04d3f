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
