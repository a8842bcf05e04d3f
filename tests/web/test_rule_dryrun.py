"""The rule page's dry-run (decision 0080): a rule naming personal fields asks for unmask and a
purpose, and kept figures are shown only to readers who could have made them."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from sciti.access import create_user
from sciti.api.app import create_app
from sciti.ops import migrate, session_scope
from sciti.ops.rules_tables import RuleDryRun
from sciti.risk import rules
from sciti.web.i18n import catalogue
from tests.risk.rules.test_dryrun_access import write_passengers
from tests.web.conftest import PASSWORD, login
from tests.web.test_i18n import english_on

RULE = """\
id: WEB-PAX-01
title: A known passport
kind: passenger
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def test_the_rule_page_asks_for_a_purpose_and_keeps_figures_in_scope(settings) -> None:
    migrate(settings.resolved_ops_db_url)
    write_passengers(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "ori", ["targeting_officer"], password=PASSWORD)
        create_user(s, "kim", ["supervisor"], office_code="KR01", password=PASSWORD)
    with session_scope(settings.resolved_ops_db_url) as s:
        rules.save_rule(s, RULE, actor="ori")
        ran = rules.dry_run_version(
            settings, s, "WEB-PAX-01", 1, 400, actor="ori", unmask=True, purpose="case 2026-114"
        )
        assert ran.hits == 3
    app = create_app(settings)
    with TestClient(app) as ori, TestClient(app) as kim:
        page = login(ori, "ori").get("/ui/rules/WEB-PAX-01").text
        form = page[page.index('id="dryrun-form"') : page.index("</form>", page.index('id="dryrun-form"'))]
        assert 'name="unmask"' in form and 'name="purpose"' in form and "document_number" in form
        assert "v1: 3 hits among 5 records" in page
        # Bound to one office: figures made over every office's records are not shown.
        page = login(kim, "kim").get("/ui/rules/WEB-PAX-01").text
        assert "3 hits among" not in page and "Not dry-run yet." not in page
        # ... and the page says they exist and why they are not shown, not that there are none.
        assert "v1 was dry-run, but its figures are withheld from you: made over every office" in page
        # The history's decisions read as words, in the page's language.
        assert "<td>created</td>" in page


SCOPED = """\
id: WEB-PAX-02
title: Passengers at an office that sent none
kind: passenger
scope: {offices: [ZZ99]}
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def test_the_rule_page_says_why_a_scoped_rule_hit_nothing(settings) -> None:
    """A 0-hit dry-run whose scope kept no record says so on the page, not only in the API."""
    migrate(settings.resolved_ops_db_url)
    write_passengers(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "ori", ["targeting_officer"], password=PASSWORD)
    with session_scope(settings.resolved_ops_db_url) as s:
        rules.save_rule(s, SCOPED, actor="ori")
        ran = rules.dry_run_version(
            settings, s, "WEB-PAX-02", 1, 400, actor="ori", unmask=True, purpose="case 2026-114"
        )
        assert (ran.hits, ran.in_scope) == (0, 0) and ran.notes
    with TestClient(create_app(settings)) as ori:
        page = login(ori, "ori").get("/ui/rules/WEB-PAX-02").text
    assert "v1: 0 hits among 5 records" in page and "In scope: 0" in page
    notes = page[page.index('id="dryrun-notes"') : page.index("</div>", page.index('id="dryrun-notes"'))]
    assert "the scope kept none of the 5 passengers" in notes and "ZZ99" in notes


LATER = """\
id: WEB-PAX-03
title: Passengers at an office that sent none, valid from 2030
kind: passenger
scope: {offices: [ZZ99, QQ01]}
valid_from: "2030-01-01"
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def _notes(page: str) -> str:
    start = page.rindex("<div", 0, page.index('id="dryrun-notes"'))
    return page[start : page.index("</div>", start)]


def test_the_notes_are_said_in_chinese_from_their_codes(settings) -> None:
    """A scope that kept nothing and a validity outside the window, said whole in Chinese with the
    figures, offices and dates the English names; the English page keeps the engine's sentences."""
    migrate(settings.resolved_ops_db_url)
    write_passengers(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "ori", ["targeting_officer"], password=PASSWORD)
    with session_scope(settings.resolved_ops_db_url) as s:
        rules.save_rule(s, LATER, actor="ori")
        ran = rules.dry_run_version(
            settings, s, "WEB-PAX-03", 1, 400, actor="ori", unmask=True, purpose="case 2026-114"
        )
    assert [c["code"] for c in ran.note_codes] == ["scope_kept_none", "valid_outside"]
    with TestClient(create_app(settings)) as ori:
        login(ori, "ori")
        english = _notes(ori.get("/ui/rules/WEB-PAX-03").text)
        ori.cookies.set("sciti_lang", "zh-Hant")
        page = ori.get("/ui/rules/WEB-PAX-03").text
    assert all(escape(n) in english for n in ran.notes)  # as the engine wrote them
    notes = _notes(page)
    assert "data-untranslated" not in notes and english_on(notes) == [], notes
    said = re.sub(r"<[^>]+>", "", notes)
    assert "適用範圍未保留試算期間內 5 筆旅客中的任何一筆（關別 ZZ99、QQ01 保留 0 筆）" in said, said
    window = f"{ran.window_from} 至 {ran.window_to}"
    assert f"規則的有效期間（自 2030-01-01 起）完全在試算期間（{window}）之外" in said, said
    assert '<span translate="no">ZZ99</span>' in notes  # offices and dates: data, as written
    # The page's script says a fresh dry-run with the same words (static/app.js).
    words = json.loads(html.unescape(page.split('id="dry-note-words">', 1)[1].split("</script>", 1)[0]))
    assert (
        words["scope_kept_none"] == catalogue("zh-Hant")["dry_note.scope_kept_none"]
        and words["unit"] == "旅客"
    )


def test_notes_kept_without_codes_are_shown_as_the_engine_wrote_them(settings) -> None:
    """Figures kept before the notes had codes: the Chinese page shows their English, marked."""
    migrate(settings.resolved_ops_db_url)
    write_passengers(settings)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "ori", ["targeting_officer"], password=PASSWORD)
    with session_scope(settings.resolved_ops_db_url) as s:
        rules.save_rule(s, LATER, actor="ori")
        ran = rules.dry_run_version(
            settings, s, "WEB-PAX-03", 1, 400, actor="ori", unmask=True, purpose="case 2026-114"
        )
        kept = s.scalars(select(RuleDryRun).where(RuleDryRun.rule_id == "WEB-PAX-03")).one()
        kept.result = {k: v for k, v in kept.result.items() if k != "note_codes"}
    with TestClient(create_app(settings)) as ori:
        login(ori, "ori").cookies.set("sciti_lang", "zh-Hant")
        notes = _notes(ori.get("/ui/rules/WEB-PAX-03").text)
    assert notes.count('<li data-untranslated="engine">') == len(ran.notes) == 2
    assert escape(ran.notes[0]) in notes
