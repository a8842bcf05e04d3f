"""`sciti demo setup` trains the demo champion on the demo world's own period.

`make run` loads the KCS files and the demo world into one lake. KCS-only fields (clearance
process, import type, ...) are null for every demo record and the two fraud rates differ, so a
model trained on both learnt which system a record came from: "Missing: Clearance process of the
source system" explained most demo scores, and its ranking of the demo world's random inspections
was no better than chance (docs/decisions/0066).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sciti.cli.demo_setup import _model, demo_start
from sciti.demo import GenerationReport, load_scale, load_world
from sciti.risk.features import lake_records
from sciti.risk.models import get_version, load_version
from tests.risk.engine.conftest import build_instance

DECLARATION_FEEDS = [
    "demo-declarations",
    "demo-declaration-items",
    "demo-declaration-parties",
    "demo-inspections",
]
KCS_ONLY = ("process_type", "import_type", "import_use")  # null in every demo record


def test_demo_champion_learns_from_the_demo_world_only(
    tmp_path, shared_data, tiny_world: GenerationReport
) -> None:
    s = build_instance(tmp_path / "instance", shared_data)  # KCS declarations of 2021 Q1, inspected
    assert demo_start(s) is None  # no demo world: setup trains on every labelled record, as before
    load_world(s, tiny_world.out, feeds=DECLARATION_FEEDS, reference=False)
    start = demo_start(s)
    assert start == load_scale("tiny").start

    entry = get_version(s, str(_model(s)))
    assert entry["status"] == "champion"
    assert entry["train_since"] == start.isoformat()
    rows = lake_records(s, "declaration", labels=True)
    inspected = rows.filter(pc.fill_null(rows["inspected"], False))
    demo = inspected.filter(pc.greater_equal(inspected["record_date"], pa.scalar(start, pa.date32())))
    assert 0 < entry["rows"] == demo.num_rows < inspected.num_rows  # the KCS rows were left out
    assert set(demo["source"].to_pylist()) == {"demo-clearance"}

    # A KCS-only field is null for every record it learnt from: its missingness cannot stand for
    # the source system, so no tree splits on it and no explanation names it.
    model = load_version(s, entry["version"])
    splits = dict(zip(model.feature_names, model.booster.feature_importance("split"), strict=True))
    assert all(splits[name] == 0 for name in KCS_ONLY), splits
