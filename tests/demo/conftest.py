"""The tiny world, generated once per test session (seconds). Other suites may reuse the recipe."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciti.demo import GenerationReport, generate

SEED = 7


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    return generate(tmp_path_factory.mktemp("tiny_world"), "tiny", SEED)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)
