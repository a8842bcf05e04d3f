"""`sciti demo setup` makes an officer bound to an office, so a new user sees need-to-know at work:
`officer-ktct` finds KTCT's items in the queue and nothing else, where `officer` sees every office's.

The instance holds the tiny demo world's declarations and CUSCAR manifests, loaded through their
connectors; the setup runs as `make run` runs it, and the queue is read over the API with tokens of
the accounts it made.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sciti.access import find_user, issue_token
from sciti.cli.main import app
from sciti.demo import GenerationReport, load_world
from sciti.ops import migrate, session_scope
from sciti.settings import get_settings
from tests.api.conftest import bearer, make_client
from tests.conftest import make_settings, settings_env
from tests.demo.test_setup_model import DECLARATION_FEEDS


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_world: GenerationReport):
    home = tmp_path_factory.mktemp("setup_office") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    load_world(s, tiny_world.out, feeds=[*DECLARATION_FEEDS, "edifact-cuscar"])
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings_env(s).items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["demo", "setup"])
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return s, result.output


def queue_of(settings, username: str) -> list[dict]:
    """Every queue item (any status) the account is shown over the API, page by page."""
    with session_scope(settings.resolved_ops_db_url) as session:
        user = find_user(session, username)
        assert user is not None
        token = issue_token(session, user, 60).token
    items: list[dict] = []
    cursor = None
    with make_client(settings) as client:
        while True:
            params = {"status": "any", "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/risk/queue", params=params, headers=bearer(token))
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return items


def test_the_demo_setup_makes_an_officer_bound_to_ktct(demo) -> None:
    settings, output = demo
    row = next(line for line in output.splitlines() if "officer-ktct" in line)
    assert "targeting_officer" in row and "KTCT" in row, row
    with session_scope(settings.resolved_ops_db_url) as session:
        bound = find_user(session, "officer-ktct")
        officer = find_user(session, "officer")
        assert bound is not None and officer is not None
        assert (bound.office_code, officer.office_code) == ("KTCT", None)
        assert list(bound.roles) == list(officer.roles) == ["targeting_officer"]


def test_the_bound_officer_sees_only_ktcts_queue_items(demo) -> None:
    settings, _ = demo
    everyone = queue_of(settings, "officer")
    ktct = queue_of(settings, "officer-ktct")
    assert {i["office_code"] for i in everyone} > {"KTCT"}  # other offices' items are queued too
    assert ktct and {i["office_code"] for i in ktct} == {"KTCT"}
    assert sorted(i["record_id"] for i in ktct) == sorted(
        i["record_id"] for i in everyone if i["office_code"] == "KTCT"
    )
