"""The rule page's dry-run (decision 0080): a rule naming personal fields asks for unmask and a
purpose, and kept figures are shown only to readers who could have made them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sciti.access import create_user
from sciti.api.app import create_app
from sciti.ops import migrate, session_scope
from sciti.risk import rules
from tests.risk.rules.test_dryrun_access import write_passengers
from tests.web.conftest import PASSWORD, login

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
