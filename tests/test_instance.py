"""The instance id: made once, kept, and refused when damaged."""

from __future__ import annotations

import pytest

from sciti.errors import ConfigError
from sciti.instance import FILE, instance_id


def test_made_once_and_kept(tmp_path):
    first = instance_id(tmp_path)
    assert len(first) == 12 and int(first, 16) >= 0
    assert instance_id(tmp_path) == first
    assert instance_id(tmp_path / "elsewhere") != first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no draft left


def test_a_damaged_file_is_refused(tmp_path):
    (tmp_path / FILE).write_text("sciti-elock\n")
    with pytest.raises(ConfigError, match="not an instance id"):
        instance_id(tmp_path)
