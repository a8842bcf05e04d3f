"""End to end: emitted files go through the platform's own connectors with nothing quarantined,
and deliberately corrupted copies are quarantined."""

from __future__ import annotations

import shutil

import pytest

acquire = pytest.importorskip("sciti.acquire")


def run(settings, connector: str, folder):
    runner = acquire.Runner(settings)
    return runner.ingest_path(acquire.load_connector(settings, connector), folder)


@pytest.mark.parametrize(
    ("connector", "source", "pattern", "count"),
    [("wco-dec", "declarations/xml", "*.xml", 8), ("edifact-cuscar", "manifests/cuscar", "*.edi", 2)],
)
def test_emitted_files_pass_their_connector(
    tiny_world, settings, tmp_path, connector, source, pattern, count
):
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted((tiny_world.out / source).glob(pattern))[:count]:
        shutil.copy(f, folder / f.name)
    results = run(settings, connector, folder)
    assert len(results) == count
    for r in results:
        assert r.status == "committed", (r.unit, r.error)
        assert r.quarantined == 0 and r.stored == r.received > 0, r


@pytest.mark.parametrize(
    ("connector", "source", "pattern", "damage"),
    [
        (
            "wco-dec",
            "declarations/xml",
            "*.xml",
            (b"<FunctionCode>9</FunctionCode>", b"<FunctionCode>99x</FunctionCode>"),
        ),
        ("edifact-cuscar", "manifests/cuscar", "*.edi", (b"UNT+", b"UNT+9")),
    ],
)
def test_corrupted_copies_are_quarantined(tiny_world, settings, tmp_path, connector, source, pattern, damage):
    folder = tmp_path / "in"
    folder.mkdir()
    f = sorted((tiny_world.out / source).glob(pattern))[0]
    (folder / f.name).write_bytes(f.read_bytes().replace(*damage, 1))
    (result,) = run(settings, connector, folder)
    assert result.quarantined >= 1
    assert result.received == result.stored + result.quarantined
