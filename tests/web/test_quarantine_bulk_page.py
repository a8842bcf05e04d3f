"""The quarantine page, filtered, offers to discard every open entry it takes (decision 0110): a
preview count, a reason, the session's CSRF token, both languages; the open counts drop by exactly
the number closed."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest

from sciti.ops import Batch, QuarantineRecord, session_scope

BATCH = "bulk-web"


def late_file(web_settings, batch: str, n_rows: int) -> list[int]:
    """A late KCS file whose rows were all quarantined for one cause (the other pages' entries stay)."""
    now = datetime.now(UTC)
    with session_scope(web_settings.resolved_ops_db_url) as s:
        s.add(
            Batch(
                id=batch, connector="kcs", source="kcs", unit=f"{batch}.csv", fingerprint=batch,
                status="committed", received=n_rows, stored=0, quarantined=n_rows, started_at=now,
                finished_at=now,
            )
        )  # fmt: skip
        s.flush()
        rows = [
            QuarantineRecord(
                batch_id=batch, connector="kcs", source="kcs", locator=f"{batch}.csv:line {n + 2}",
                field="net_mass_kg", reason=f"net_mass_kg: '-{n}' is less than 0, the smallest allowed",
                raw=f"declaration_id,net_mass_kg\nB{n},-{n}\n", details={},
            )
            for n in range(n_rows)
        ]  # fmt: skip
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


@pytest.fixture(scope="module")
def bulk_batch(web_settings) -> list[int]:
    return late_file(web_settings, BATCH, 4)


def _open_panel(client) -> int:
    panels = client.get("/ui/home/panels").text
    found = re.search(r"Open in quarantine</dt><dd>(\d+)</dd>", panels)
    assert found, panels
    return int(found.group(1))


def _form(page: str) -> dict[str, str]:
    """What the page's script sends for the bulk form: its named inputs (hidden and the reason)."""
    form = re.search(r'<form class="card" id="bulk-discard-form".*?</form>', page, re.S)
    assert form, page
    return {
        n: html.unescape(v) for n, v in re.findall(r'<input [^>]*name="(\w+)" value="([^"]*)"', form.group(0))
    }


def test_a_filtered_page_discards_every_open_entry_it_shows(web_settings, as_user, bulk_batch) -> None:
    dee = as_user("dee")
    dee.cookies.set("sciti_lang", "en")
    assert 'id="bulk-discard-form"' not in dee.get("/ui/quarantine").text  # no filter: no bulk action
    opened = _open_panel(dee)

    page = dee.get(f"/ui/quarantine?status=open&batch_id={BATCH}&reason_contains=is+less+than+0").text
    assert '<p id="bulk-preview">4 open records match this filter.</p>' in page
    assert "Discard all 4 matching entries" in page
    assert 'data-api="/api/v1/quarantine/discard"' in page
    assert 'id="bulk-reason" name="reason" required maxlength="2000"' in page
    body = {**_form(page), "reason": "late file resent in full as late-4b.csv"}
    assert body == {
        "batch_id": BATCH,
        "reason_contains": "is less than 0",
        "reason": "late file resent in full as late-4b.csv",
    }
    no_token = dee.post("/api/v1/quarantine/discard", json={**body, "dry_run": True})
    assert no_token.status_code == 403  # no CSRF token: refused, as every form's call

    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    preview = dee.post(
        "/api/v1/quarantine/discard", json={**body, "dry_run": True}, headers={"X-CSRF-Token": token}
    )
    assert preview.status_code == 200 and preview.json()["closed"] == 4
    tom = as_user("tom")  # a targeting officer: no quarantine.resubmit
    tom_page = tom.get("/ui/quarantine")
    refused = tom.post(
        "/api/v1/quarantine/discard",
        json=body,
        headers={"X-CSRF-Token": re.search(r'data-csrf="([^"]*)"', tom_page.text).group(1)},
    )
    assert refused.status_code == 403

    done = dee.post("/api/v1/quarantine/discard", json=body, headers={"X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    assert (done.json()["matched"], done.json()["closed"]) == (4, 4)
    after = dee.get(f"/ui/quarantine?status=open&batch_id={BATCH}").text
    assert 'id="bulk-discard-form"' not in after and "Nothing in quarantine matches." in after
    closed = dee.get(f"/ui/quarantine/{bulk_batch[0]}").text
    assert "late file resent in full as late-4b.csv" in closed and 'id="discard-form"' not in closed
    assert _open_panel(dee) == opened - 4  # the home figure drops by exactly the closed count
    assert dee.get(f"/api/v1/batches/{BATCH}").json()["quarantine_open"] == 0


def test_the_bulk_form_speaks_chinese(web_settings, as_user) -> None:
    from tests.web.test_i18n import english_words

    late_file(web_settings, "bulk-web-zh", 2)
    dee = as_user("dee")
    dee.cookies.set("sciti_lang", "zh-Hant")
    try:
        page = dee.get("/ui/quarantine?status=open&batch_id=bulk-web-zh").text
    finally:
        dee.cookies.set("sciti_lang", "en")
    form = re.search(r'<form class="card" id="bulk-discard-form".*?</form>', page, re.S)
    assert form, page
    assert "共 2 筆未結案紀錄符合此篩選條件。" in form.group(0) and "捨棄全部 2 筆符合的項目" in form.group(0)
    shown = (
        re.sub(r"<[^>]+>", " ", form.group(0)) + " " + " ".join(re.findall(r'data-confirm="([^"]+)"', page))
    )
    assert english_words(html.unescape(shown)) == []
    assert "原因包含" in page
