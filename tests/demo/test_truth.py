"""The ground truth is complete, resolvable, and kept out of the feeds."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from tests.demo.conftest import read_csv, read_jsonl


def test_every_declaration_party_resolves_to_its_entity(tiny_world) -> None:
    root = tiny_world.out
    forms = defaultdict(set)
    for r in read_csv(root / "ground_truth/entity_forms.csv"):
        forms[(r["name"], r["street"], r["phone"])].add(r["entity_id"])
    truth = {r["declaration_id"]: r for r in read_csv(root / "ground_truth/declarations.csv")}
    parties = read_csv(root / "declarations/csv/declaration_parties.csv")
    assert parties
    for p in parties:
        owners = forms[(p["name"], p["street"], p["phone"])]
        assert truth[p["declaration_id"]][f"{p['role']}_entity"] in owners, p


def test_the_same_entity_looks_different_across_systems(tiny_world) -> None:
    kinds = defaultdict(set)
    for r in read_csv(tiny_world.out / "ground_truth/declarations.csv"):
        kinds[r["importer_entity"]].add(r["importer_form"])
    assert any(len(v) >= 3 for v in kinds.values())
    forms = read_csv(tiny_world.out / "ground_truth/entity_forms.csv")
    names = {r["form"]: r["name"] for r in forms if r["entity_id"] == forms[0]["entity_id"]}
    assert len(set(names.values())) == len(names) >= 3


@pytest.mark.parametrize(
    ("feed", "rel", "key"),
    [
        ("declarations", "ground_truth/declarations.csv", "declaration_id"),
        ("currency", "currency/cbni.csv", "declaration_number"),
        ("passengers", "passengers/api_records.jsonl", "record_ref"),
        ("elock", "elock/messages.jsonl", "trip_id"),
    ],
)
def test_every_label_points_at_a_record(tiny_world, feed: str, rel: str, key: str) -> None:
    path = tiny_world.out / rel
    rows = read_csv(path) if rel.endswith(".csv") else list(read_jsonl(path))
    keys = {r[key] for r in rows}
    labels = [r for r in read_csv(tiny_world.out / "ground_truth/labels.csv") if r["feed"] == feed]
    assert labels
    assert {r["record_key"] for r in labels} <= keys


def test_intel_mentions_appear_in_their_reports(tiny_world) -> None:
    reports = {r["report_id"]: r["text"] for r in read_jsonl(tiny_world.out / "intel/reports.jsonl")}
    mentions = read_csv(tiny_world.out / "ground_truth/intel_mentions.csv")
    assert mentions
    for m in mentions:
        assert m["surface"] in reports[m["report_id"]]


def test_no_feed_carries_ground_truth(tiny_world) -> None:
    """Entity ids and pattern names exist only under ground_truth/."""
    entity_id = re.compile(r"\b[CP]\d{7}\b")
    words = re.compile(r"undervaluation|misclassification|front_group|watchlisted|true_lead")
    for path in tiny_world.out.rglob("*"):
        if path.is_file() and "ground_truth" not in path.parts:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not entity_id.search(text), path
            assert not words.search(text), path
