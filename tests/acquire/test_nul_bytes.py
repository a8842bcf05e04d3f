"""A NUL byte (0x00) in received text quarantines its record, never the batch (decision 0085).

PostgreSQL text cannot hold a NUL; SQLite can. The outcome must be the same on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from sciti.ops import Batch, QuarantineRecord, session_scope
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def nsettings(request, tmp_path: Path):
    home = tmp_path / "instance"
    home.mkdir()
    extra = {}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        extra = {"catalog_uri": url, "ops_db_url": url}
    return make_settings(home, **extra)


def ingest(settings, connector: str, path: Path):
    from sciti.acquire import Runner, load_connector

    [result] = Runner(settings).ingest_path(load_connector(settings, connector), path)
    with session_scope(settings.resolved_ops_db_url) as s:
        rows = [(q.locator, q.reason, q.raw) for q in s.scalars(select(QuarantineRecord))]
        batch = s.get(Batch, result.batch_id)
        assert batch is not None and batch.status == "committed"
    return result, rows


def test_a_csv_line_with_a_nul_is_quarantined_and_the_rest_stored(nsettings, shared_data, tmp_path):
    lines = (shared_data / "kcs" / "valid.csv").read_bytes().splitlines(keepends=True)[:11]
    lines[2] = lines[2].replace(b",", b",\x00", 1)  # sed '3s/,/,\x00/'
    path = tmp_path / "nul.csv"
    path.write_bytes(b"".join(lines))
    result, rows = ingest(nsettings, "kcs", path)
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 10, 9, 1)
    [(locator, reason, raw)] = rows
    assert locator == "nul.csv:line 3"
    assert "'\u24002021-01-01' is not a valid date" in reason
    assert "NUL byte (0x00), first at line 2, character 10 of its text, shown here as \u2400" in reason
    assert "\x00" not in raw and "\u2400" in raw


def test_an_xml_file_with_a_nul_is_quarantined(nsettings, shared_data, tmp_path):
    sample = sorted((shared_data / "wco" / "samples").glob("*.xml"))[0].read_bytes()
    at = sample.index(b"<", 200)
    path = tmp_path / "nul.xml"
    path.write_bytes(sample[:at] + b"\x00" + sample[at:])
    result, rows = ingest(nsettings, "wco-dec", path)
    assert (result.status, result.received, result.stored, result.quarantined) == ("committed", 1, 0, 1)
    [(_, reason, raw)] = rows
    assert "Char 0x0" in reason and "NUL byte (0x00)" in reason and "\x00" not in raw


@pytest.mark.parametrize(
    ("body", "locator", "reason"),
    [
        (
            b'{"a": 1}\n{"a": "x\x00y"}\n',
            "events.jsonl:line 2",
            "line 2 is not valid JSON: it holds a NUL byte (0x00), first at byte 9 of the line",
        ),
        (
            b'{"a": "\xe9t\xe9"}\n',
            "events.jsonl:line 1",
            "line 1 is not valid JSON: its bytes are not valid UTF-8 (byte 8 of the line is 0xe9)",
        ),
        (b"", "events.jsonl", "events.jsonl is empty (0 bytes): there is no JSON object in it"),
        (b"\n \n", "events.jsonl", "events.jsonl is only blank lines (3 bytes)"),
    ],
)
def test_ndjson_reasons_say_what_is_wrong_and_where(nsettings, tmp_path, body, locator, reason):
    path = tmp_path / "events.jsonl"
    path.write_bytes(body)
    result, rows = ingest(nsettings, "demo-elock", path)
    assert result.received == result.stored + result.quarantined
    [(where, why, _)] = [(loc, why, raw) for loc, why, raw in rows if loc == locator]
    assert why.startswith(reason), why
