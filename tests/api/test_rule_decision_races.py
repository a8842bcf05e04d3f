"""Parallel decisions on one rule version over HTTP: one 200, the others 409, and the 200 tells the truth.

The reviewer's case: four approvals and four rejections of one submitted version at once. Before
the fix, on SQLite, two rejections and three approvals came back 200; the supervisor was told
"rejected" while the version was approved and in effect.
"""

from __future__ import annotations

import threading

from tests.api.conftest import assert_envelope, bearer
from tests.api.test_rules import RULE

BASE = "/api/v1/rules/API-UNDER-01"


def test_parallel_approvals_and_rejections_one_wins_the_rest_are_409(client, token_for) -> None:
    analyst, supervisor = bearer(token_for("analyst")), bearer(token_for("supervisor"))
    assert client.post("/api/v1/rules", json={"text": RULE}, headers=analyst).status_code == 201
    assert client.post(f"{BASE}/versions/1/submit", json={}, headers=analyst).status_code == 200

    steps = ["approve", "reject"] * 4
    barrier, answers = threading.Barrier(len(steps)), []

    def decide(step: str) -> None:
        barrier.wait()
        answers.append((step, client.post(f"{BASE}/versions/1/{step}", json={}, headers=supervisor)))

    threads = [threading.Thread(target=decide, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    won = [(step, r) for step, r in answers if r.status_code == 200]
    assert len(won) == 1, [(s, r.status_code, r.text) for s, r in answers]
    for _, lost in (a for a in answers if a[1].status_code != 200):
        assert_envelope(lost, 409, "rule_workflow")
    step, answer = won[0]
    told = answer.json()["status"]
    assert told == {"approve": "approved", "reject": "rejected"}[step]

    detail = client.get(BASE, headers=analyst).json()
    assert detail["latest"]["status"] == told  # what the winner was told is what happened
    assert detail["effective_version"] == (1 if told == "approved" else None)
    history = client.get(f"{BASE}/history", headers=analyst).json()
    assert [d["decision"] for d in history["decisions"]] == ["create", "submit", step]
    security = bearer(token_for("security_officer"))
    entries = client.get("/api/v1/audit", params={"action": "rule.", "limit": 500}, headers=security).json()
    decided = [e for e in entries["entries"] if e["action"] in ("rule.approve", "rule.reject")]
    assert [(e["action"], e["outcome"]) for e in decided] == [(f"rule.{step}", "ok")]
