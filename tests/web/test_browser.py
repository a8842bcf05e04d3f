"""Browser tests: Playwright driving Debian's Chromium (headless) against a real server on loopback.

The network is cut off: every request that is not to the test server is aborted and recorded, and
each test asserts none was made (no CDN, no font or map service). Screenshots of the main pages go
to ``artifacts/web/`` (git-ignored).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyotp
import pytest

from tests.web.conftest import ARTEFACTS, PASSWORD

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("SCITI_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium or set SCITI_CHROMIUM")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def offline(chromium, live_server) -> Iterator:
    """A fresh browser context that can reach only the test server; yields (page, outside requests)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    outside: list[str] = []
    server = urlparse(live_server).netloc

    def gate(route):
        if urlparse(route.request.url).netloc == server:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page, outside
    context.close()
    assert outside == [], f"the app asked for something outside SCITI: {outside}"
    assert errors == [], f"script errors in the page: {errors}"


def log_in(page, base: str, username: str, totp: str = "") -> None:
    page.goto(f"{base}/ui/")
    assert "/ui/login" in page.url  # not logged in: the login page
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    if totp:
        page.get_by_label("One-time code").fill(totp)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/ui/")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_login_with_mfa_shows_the_dashboard(offline, live_server, web_world):
    page, _ = offline
    page.goto(f"{live_server}/ui/login")
    shot(page, "login")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#login-error")
    assert "one-time code" in page.inner_text("#login-error")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("One-time code").fill(pyotp.TOTP(web_world.totp_secret).now())
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/ui/")
    page.wait_for_selector("#h-decl")  # the panels arrive through htmx
    page.wait_for_selector("#h-decl ~ .chart canvas")  # ECharts drew the chart from local files
    assert page.locator(".state.empty", has_text="No seizures").count() == 1
    shot(page, "home")
    nav = page.get_by_role("navigation", name="Main navigation")
    assert nav.get_by_role("link", name="SQL").count() == 1
    assert nav.get_by_role("link", name="Administration").count() == 0  # an analyst has no admin page


def test_run_a_query_chart_it_and_export_it(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "tom")
    page.get_by_role("link", name="SQL").click()
    page.wait_for_load_state("load")  # htmx attaches to forms once its script has run
    page.locator("#sql").fill(
        "SELECT office_code, count(*) AS n FROM std.declarations GROUP BY 1 ORDER BY 2 DESC"
    )
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#sql-table")
    rows = page.locator("#sql-table tbody tr").count()
    assert rows > 0 and page.inner_text("#sql-count").startswith(f"{rows} rows")
    page.locator("[data-role=kind]").select_option("bar")
    page.wait_for_selector("#sql-chart canvas")
    page.get_by_label("Name", exact=True).fill("declarations per office")
    page.get_by_role("button", name="Save query").click()
    page.wait_for_selector("#saved >> text=declarations per office")
    shot(page, "sql")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == rows and set(exported[0]) == {"office_code", "n"}


def test_a_refused_query_says_why(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "dee")
    page.goto(f"{live_server}/ui/sql")
    page.locator("#sql").fill("SELECT * FROM risk.assessments")
    page.get_by_role("button", name="Run").click()
    assert "does not exist or your roles" in page.inner_text("#sql-error")


def test_switch_to_chinese_and_back(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "sec")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_selector("text=總覽")
    assert page.locator("html").get_attribute("lang") == "zh-Hant"
    assert page.get_by_role("link", name="系統管理").count() == 1
    page.goto(f"{live_server}/ui/admin/audit")
    page.wait_for_selector("#audit-table")
    shot(page, "audit-zh")
    page.get_by_role("button", name="驗證雜湊鏈").click()
    page.wait_for_selector("#verify-result.notice")
    assert "完整" in page.inner_text("#verify-result")
    page.get_by_role("button", name="English").click()
    page.wait_for_selector("text=Audit log")


def test_a_viewer_cannot_reach_an_administrator_page(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "vic")
    assert page.get_by_role("link", name="Administration").count() == 0
    response = page.goto(f"{live_server}/ui/admin/users")
    assert response.status == 403
    assert page.get_by_role("heading", name="Not allowed").count() == 1
    shot(page, "forbidden")


def test_administrator_pages(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "adam")
    page.get_by_role("link", name="Administration").click()
    page.wait_for_load_state("load")  # htmx attaches to forms once its script has run
    page.wait_for_selector("#users-table")
    assert page.locator("#users-table", has_text="ana").count() == 1
    shot(page, "admin-users")
    page.goto(f"{live_server}/ui/sources")
    page.wait_for_selector("#batch-table")
    shot(page, "sources")


def _inspected(page, base: str) -> int:
    """Inspections counted in the dashboard's hit-rate table (all rules)."""
    page.goto(f"{base}/ui/")
    page.wait_for_selector("#hit-rates")
    cells = page.locator("#hit-rates tbody tr td:nth-child(3)").all_inner_texts()
    return sum(int(c) for c in cells)


def test_find_a_flagged_declaration_and_record_the_inspection(offline, live_server):
    page, _ = offline
    log_in(page, live_server, "tom")
    before = _inspected(page, live_server)
    page.get_by_role("link", name="Risk queue").click()
    page.wait_for_load_state("load")  # htmx attaches to forms once its script has run
    page.wait_for_selector("#queue-table")
    shot(page, "risk-queue")
    page.locator("#queue-table tbody tr a", has_text="/").first.click()  # a declaration "id/version"
    page.wait_for_selector("#reasons")
    assert "rule T-" in page.inner_text("#reasons")  # the explanation names the rule that hit
    assert "valid.csv" in page.inner_text("#provenance")  # back to the source file and line
    shot(page, "risk-record")
    page.get_by_label("Outcome").select_option("seizure")
    with page.expect_navigation():  # the page reloads once the API has recorded the result
        page.get_by_role("button", name="Record result").click()
    page.wait_for_selector("#reasons")
    # The reloaded page confirms, and shows the result instead of the form.
    page.wait_for_selector("#notices .notice.ok")
    assert page.inner_text("#notices") == "The inspection result is recorded."
    assert "seizure" in page.inner_text("#inspection-result")
    assert page.locator("#inspection-form").count() == 0
    shot(page, "risk-record-inspected")
    assert _inspected(page, live_server) > before  # the hit rates now count this inspection


def test_create_a_rule_dry_run_it_and_approve_it_as_a_second_person(offline, live_server, chromium):
    page, _ = offline
    log_in(page, live_server, "tom")
    page.goto(f"{live_server}/ui/rules-new")
    text = (
        "id: W-HEAVY\ntitle: Heavy consignments\nkind: declaration\n"
        "when: net_mass_kg > 10000\nweight: 20\nreason: '{net_mass_kg} kg'\n"
    )
    page.locator("#rule-text").fill(text)
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_url(f"{live_server}/ui/rules/W-HEAVY")
    page.get_by_role("button", name="Run over past data").click()
    page.wait_for_selector("#dryrun-summary")
    assert "Records:" in page.inner_text("#dryrun-summary")
    assert "In scope" not in page.inner_text("#dryrun-summary")  # no scope, no scope figure
    # A scope that keeps nothing: the answer says why there are no hits, on the page.
    page.locator("#rule-text").fill(text + "scope: {offices: [ZZ99]}\n")
    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_selector("h2#h-ver >> text=Version 2")
    page.get_by_role("button", name="Run over past data").click()
    page.wait_for_selector("#dryrun-notes")
    assert "In scope: 0" in page.inner_text("#dryrun-summary")
    assert "the scope kept none" in page.inner_text("#dryrun-notes")
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_selector("#latest-status >> text=submitted")
    assert page.get_by_role("button", name="Approve").count() == 0  # not by its author
    shot(page, "rule")
    second = chromium.new_context().new_page()
    log_in(second, live_server, "sue")
    second.goto(f"{live_server}/ui/rules/W-HEAVY")
    second.get_by_role("button", name="Approve").click()
    second.wait_for_selector("#latest-status >> text=approved")
    assert "sue" in second.inner_text("#decisions")
    second.context.close()


def test_models_page_draws_the_evaluation_curves(offline, live_server, web_settings):
    from sciti.risk.models import train

    entry = train(web_settings, "declaration", actor="sue", params={"num_boost_round": 5})
    page, _ = offline
    log_in(page, live_server, "sue")
    page.goto(f"{live_server}/ui/models?version={entry['version']}")
    for curve in ("precision_at_k", "roc", "precision_recall"):
        page.wait_for_selector(f"[data-curve={curve}] canvas")  # ECharts drew it from the entry's points
    shot(page, "models")


def test_discard_every_entry_of_a_bad_file_from_the_quarantine_page(offline, live_server, web_settings):
    """A late file whose rows were all refused for one cause: the engineer filters the page by its
    batch, gives a reason, confirms, and every entry is closed with that reason (decision 0110)."""
    from sciti.ops import QuarantineRecord, session_scope
    from tests.web.test_quarantine_bulk_page import late_file

    ids = late_file(web_settings, "bulk-browser", 3)
    page, _ = offline
    log_in(page, live_server, "dee")
    page.goto(f"{live_server}/ui/quarantine?batch_id=bulk-browser")
    assert "3 open records match this filter." in page.inner_text("#bulk-preview")
    page.get_by_label("Why these records will not be stored").fill("supplier resent the file corrected")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    with page.expect_navigation():  # the page reloads once the API has closed them
        page.get_by_role("button", name="Discard all 3 matching entries").click()
    page.wait_for_selector("#notices .notice.ok")
    assert asked == ["Discard 3 records? They will not be stored."]
    assert "discarded" in page.inner_text("#notices")
    assert page.locator("#bulk-discard-form").count() == 0  # nothing open is left to discard
    with session_scope(web_settings.resolved_ops_db_url) as s:
        closed = [s.get(QuarantineRecord, i) for i in ids]
        assert {(q.status, q.details.get("discard_reason")) for q in closed} == {
            ("discarded", "supplier resent the file corrected")
        }


def test_a_dry_run_on_a_chinese_page_says_its_notes_in_chinese(offline, live_server, web_settings):
    """The page's script says a fresh dry-run's notes from their codes, as the server says them."""
    from sciti.access import create_user
    from sciti.ops import session_scope
    from sciti.risk import rules
    from tests.web.test_i18n import english_words

    text = (
        "id: W-LATER\ntitle: Heavy consignments from 2030\nkind: declaration\nscope: {offices: [ZZ99]}\n"
        "valid_from: '2030-01-01'\nwhen: net_mass_kg > 10000\nweight: 20\nreason: '{net_mass_kg} kg'\n"
    )
    with session_scope(web_settings.resolved_ops_db_url) as s:  # a person of their own: the choice of
        create_user(s, "mei", ["targeting_officer"], password=PASSWORD)  # language is saved with them
        rules.save_rule(s, text, actor="mei")
    page, _ = offline
    log_in(page, live_server, "mei")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_selector("text=總覽")
    page.goto(f"{live_server}/ui/rules/W-LATER")
    page.locator("#dryrun-form button[type=submit]").click()
    page.wait_for_selector("#dryrun-notes")
    drawn = page.inner_text("#dryrun-notes")
    assert page.locator("#dryrun-notes [data-untranslated]").count() == 0
    assert english_words(drawn) == [], drawn
    records = int(re.search(r"紀錄數: (\d+)", page.inner_text("#dryrun-summary")).group(1))
    assert records > 0 and f"{records:,} 筆報關單中的任何一筆（關別 ZZ99 保留 0 筆）" in drawn, drawn
    assert "規則的有效期間（自 2030-01-01 起）完全在試算期間" in drawn, drawn
    assert page.locator('#dryrun-notes span[translate="no"]', has_text="ZZ99").count() == 1
    page.reload()  # the kept figures, drawn by the server: the same words
    page.wait_for_selector("#dryrun-notes")
    assert page.inner_text("#dryrun-notes") == drawn
