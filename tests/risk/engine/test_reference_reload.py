"""A running engine picks up a newly built feature reference without a restart (decision 0103).

``sciti risk reference build`` saves a new reference to the lake; a server that kept the old one
would score real time against other numbers than batch (a record 51.48 blue in batch, 60.13 yellow
in real time). The server checks the saved reference's id on the rules schedule (one small catalog
query), loads a new one off the event loop, swaps it in whole and says so in /risk/status.
The tests save references: the KCS instance is the module's own (``own_kcs``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from prometheus_client import REGISTRY

from sciti.risk import features
from sciti.risk.engine import Assessor, RiskService
from sciti.risk.lanes import parse_policy
from tests.api.conftest import bearer, make_client, token_factory
from tests.risk.engine.test_store import POLICY, heavy_cheap


def reloads() -> float:
    return REGISTRY.get_sample_value("sciti_risk_reference_reloads_total") or 0.0


def test_a_rebuilt_reference_is_used_after_the_next_check(own_kcs, caplog) -> None:
    assessor = Assessor.load(own_kcs, kinds=("declaration",), reload_seconds=0.3)
    old = assessor.reference
    assert assessor.refresh_rules(force=True) is False and assessor.reference is old  # nothing new
    client = make_client(own_kcs)
    svc = RiskService(own_kcs, assessor)
    client.app.state.risk_service = svc
    tokens = token_factory(own_kcs)
    viewer, clearance = bearer(tokens("viewer")), bearer(tokens("clearance_system"))
    try:
        assert (
            client.get("/api/v1/risk/status", headers=viewer).json()["reference_snapshot"] == old.snapshot_id
        )

        # `sciti risk reference build` over the same lake: the same snapshot id, a new reference.
        before = reloads()
        features.save_reference(own_kcs, features.build_reference(own_kcs))
        time.sleep(0.35)  # the next check
        with caplog.at_level(logging.INFO, logger="sciti.risk.engine"):
            (record,) = heavy_cheap("REFA")
            r = client.post(
                "/api/v1/risk/assess", json={"kind": "declaration", "record": record}, headers=clearance
            )
        assert r.status_code == 200, r.text
        assert assessor.reference is not old and reloads() == before + 1
        assert any("risk reference is now" in m for m in caplog.messages), caplog.messages

        # A reference of another lake snapshot: real time and /risk/status name it.
        newer = dataclasses.replace(features.load_reference(own_kcs), snapshot_id="rebuilt-0103")
        features.save_reference(own_kcs, newer)
        time.sleep(0.35)
        status = client.get("/api/v1/risk/status", headers=viewer).json()
        assert status["reference_snapshot"] == "rebuilt-0103", status
        (record,) = heavy_cheap("REFB")
        r = client.post(
            "/api/v1/risk/assess", json={"kind": "declaration", "record": record}, headers=clearance
        )
        assert r.json()["assessments"][0]["reference_snapshot"] == "rebuilt-0103", r.text
        assert reloads() == before + 2

        # Unchanged since: later checks load nothing.
        time.sleep(0.35)
        assert assessor.refresh_rules() is False and reloads() == before + 2
        # Batch against the same instance uses the same reference.
        table = features.lake_records(own_kcs, "declaration").slice(0, 5)
        assert set(assessor.assess_batch("declaration", table)["reference_snapshot"].to_pylist()) == {
            "rebuilt-0103"
        }
    finally:
        svc.stop()


def _assessor(watch, loader) -> Assessor:
    return Assessor(
        policy=parse_policy(POLICY),
        reference=SimpleNamespace(snapshot_id="old", built_at=datetime.now(UTC)),
        parts_by_kind={},
        rules_loader=lambda kind, at: [],
        reload_seconds=0.0,
        reference_watch=watch,
        reference_loader=loader,
        reference_key="old built x",
    )


def test_a_reference_that_fails_to_load_leaves_the_old_one_serving(caplog) -> None:
    calls = []

    def broken():
        calls.append(1)
        raise OSError("file gone")

    assessor = _assessor(lambda: "new built y", broken)
    with caplog.at_level(logging.ERROR, logger="sciti.risk.engine"):
        assert assessor.refresh_rules() is False and assessor.refresh_rules() is False
    assert assessor.reference_snapshot == "old" and len(calls) == 2  # tried again at each check
    assert sum("failed to load, still serving old" in m for m in caplog.messages) == 1  # said once

    # The lake unreadable for a moment: keep the reference, ask again.
    def unreadable():
        raise OSError("catalog locked")

    assert _assessor(unreadable, broken).refresh_rules() is False


def test_a_build_saved_while_loading_is_taken_at_the_next_check() -> None:
    """The meta row read names one build; the tables loaded are of another: not swapped in."""
    ids = iter(["new built y", "newer built z"])
    loaded = iter([SimpleNamespace(snapshot_id="newer"), SimpleNamespace(snapshot_id="newer")])
    assessor = _assessor(lambda: next(ids), lambda: next(loaded))
    assert assessor.refresh_rules() is False and assessor.reference_snapshot == "old"
    assert assessor.refresh_rules() is True and assessor.reference_snapshot == "newer"
