"""A rule whose condition holds a text as long as a rule may be is dry-run at once, over real lake
data; a longer rule is refused before it is read.

The reviewer's case: `POST /api/v1/rules/dry-run` with `when: importer_id = '<16,000 x>'` took
6.8 s and stalled every other request (/healthz 6.5 s): the lake's scan for the tables a query
names backtracked over the compiled SQL's long literal (sciti.lake.query, decision 0092).
"""

from __future__ import annotations

import pytest

from sciti.acquire import Runner, load_connector
from sciti.ops import migrate
from sciti.risk.rules.definition import MAX_RULE_CHARS
from sciti.settings import Settings
from tests.api.conftest import bearer, make_client, token_factory
from tests.conftest import make_settings

LONG = 60_000  # near the longest rule allowed (MAX_RULE_CHARS)
pytestmark = pytest.mark.timeout(120)  # generous: the dry-run takes about a second; this catches a stall


@pytest.fixture(scope="module")
def kcs_lake(tmp_path_factory, shared_data) -> Settings:
    home = tmp_path_factory.mktemp("dryrun-long") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    (result,) = Runner(s).ingest_path(load_connector(s, "kcs"), shared_data / "kcs" / "valid.csv")
    assert result.status == "committed"
    return s


@pytest.fixture(scope="module")
def api(kcs_lake):
    return make_client(kcs_lake), bearer(token_factory(kcs_lake)("analyst"))


def rule_text(when: str) -> str:
    return f"""\
id: T-LONG-01
title: A very long importer id
kind: declaration
when: {when}
weight: 10
reason: "Importer {{importer_id}}"
"""


@pytest.mark.parametrize(
    ("when", "hits_all"),
    [(f"importer_id = '{'x' * LONG}'", False), (f"importer_id != '{'x1' * (LONG // 2)}'", True)],
    ids=["equal", "not-equal"],
)
def test_a_60000_character_text_in_a_condition_is_dry_run(api, when, hits_all) -> None:
    client, analyst = api
    ran = client.post("/api/v1/rules/dry-run", json={"text": rule_text(when), "days": 400}, headers=analyst)
    assert ran.status_code == 200, ran.text[:500]
    figures = ran.json()
    assert figures["records"] > 0
    assert figures["hits"] == (figures["records"] if hits_all else 0)


def test_a_rule_longer_than_allowed_is_refused_with_its_size(api) -> None:
    client, analyst = api
    text = rule_text(f"importer_id = '{'x' * (MAX_RULE_CHARS + 1)}'")
    ran = client.post("/api/v1/rules/dry-run", json={"text": text, "days": 400}, headers=analyst)
    assert ran.status_code == 422, ran.text[:500]
    assert f"a rule may have at most {MAX_RULE_CHARS:,}" in ran.text
    as_json = {"id": "T-LONG-02", "title": "t", "kind": "declaration", "when": "x" * MAX_RULE_CHARS}
    ran = client.post("/api/v1/rules/dry-run", json={"definition": as_json, "days": 400}, headers=analyst)
    assert ran.status_code == 422 and "at most" in ran.text
