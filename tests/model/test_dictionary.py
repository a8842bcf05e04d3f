"""The committed data dictionary must equal what the record kinds render to."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.model import load_kinds, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def test_committed_dictionary_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/data-dictionary.md is stale: run `python -m sciti.model.dictionary > docs/data-dictionary.md`"
    )


@pytest.mark.parametrize("name", sorted(load_kinds()))
def test_every_kind_and_field_is_listed(name: str) -> None:
    text = render_markdown()
    kind = load_kinds()[name]
    assert f"### `{kind.name}` — table `{kind.ident}`" in text
    for f in kind.fields:
        assert f"| `{f.name}` | {f.type} |" in text


def test_provenance_columns_are_listed() -> None:
    text = render_markdown()
    for column in ("record_id", "source", "batch_id", "locator", "ingested_at", "parent_record_id"):
        assert f"| `{column}` |" in text
