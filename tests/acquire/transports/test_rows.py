"""Loose rows into one Arrow table: columns the connector's outputs need are always there."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sciti.acquire.transports.rows import referenced_columns, with_mapped_columns
from tests.conftest import make_settings


@pytest.fixture
def elock(tmp_path):
    from sciti.acquire import load_connector

    return load_connector(make_settings(tmp_path), "demo-elock-mqtt")


def test_every_column_an_expression_or_where_names_is_found(elock):
    names = referenced_columns(elock)
    # `event` only appears inside the CASE of event_type, `kind` only there and in `where:`.
    assert {"event", "kind", "msg_id", "sciti_locator", "vehicle_plate"} <= set(names)
    assert "gps" not in names and "message kind " not in names and "regexp_extract" not in names


def test_a_window_of_gps_fixes_only_gets_the_event_columns_as_nulls(elock):
    table = pa.table({"msg_id": ["m1"], "kind": ["gps"], "ts": ["2024-01-01T00:00:00Z"]})
    padded = with_mapped_columns(table, elock)
    assert padded.column("event").to_pylist() == [None]
    assert padded.column("kind").to_pylist() == ["gps"]  # present columns are left alone
    assert padded.column_names.count("kind") == 1
