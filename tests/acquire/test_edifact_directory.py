"""The official UN/EDIFACT directories D.96B and D.16A, parsed from the UNECE zips in the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciti.acquire.formats.edifact.directory import DirectoryError, load_directory, parse_message_table


@pytest.fixture(scope="module")
def edifact_dir(shared_data: Path) -> Path:
    return shared_data / "edifact"


def _group(nodes, number):
    for node in nodes:
        if node.group == number:
            return node
        found = _group(node.children, number)
        if found:
            return found
    return None


def _path_to(nodes, number, trail=()):
    for node in nodes:
        if node.group == number:
            return (*trail, number)
        if node.group is not None:
            found = _path_to(node.children, number, (*trail, node.group))
            if found:
                return found
    return None


@pytest.mark.parametrize(
    ("version", "min_segments", "tag", "position", "code", "fmt"),
    [
        ("96B", 120, "BGM", 1, "C106", ("1004", "an..35")),
        ("16A", 150, "BGM", 1, "C106", ("1004", "an..70")),
        ("96B", 120, "EQD", 1, "C237", ("8260", "an..17")),
        ("16A", 150, "CST", 0, "1496", "an..6"),
        ("96B", 120, "CST", 0, "1496", "n..5"),
        ("96B", 120, "TMP", 1, "C239", ("6246", "n3")),
    ],
)
def test_segment_directory(edifact_dir, version, min_segments, tag, position, code, fmt):
    directory = load_directory(edifact_dir, version)
    assert len(directory.segments) >= min_segments
    element = directory.segments[tag].elements[position]
    assert element.code == code
    if isinstance(fmt, tuple):
        assert element.components[0].code == fmt[0]
        assert str(element.components[0].format) == fmt[1]
    else:
        assert str(element.format) == fmt


@pytest.mark.parametrize(
    ("version", "message", "group", "trigger", "mandatory", "max_repeat", "nesting"),
    [
        ("96B", "CUSCAR", 5, "EQD", False, 9999, (5,)),
        ("96B", "CUSCAR", 14, "GID", True, 9999, (7, 8, 14)),
        ("16A", "CUSCAR", 10, "RFF", False, 9, (7, 8, 9, 10)),
        ("16A", "CUSCAR", 16, "QTY", False, 9, (7, 8, 14, 16)),
        ("96B", "CUSDEC", 30, "CST", False, 9999, (30,)),
        ("96B", "CUSDEC", 47, "TAX", False, 10, (30, 44, 47)),
        ("16A", "CUSDEC", 32, "CST", False, 99999, (32,)),
        ("16A", "CUSDEC", 3, "PCI", False, 999, (1, 2, 3)),
    ],
)
def test_message_structure(edifact_dir, version, message, group, trigger, mandatory, max_repeat, nesting):
    mdef = load_directory(edifact_dir, version).message(message)
    assert mdef is not None
    assert [n.tag for n in mdef.root][:2] == ["UNH", "BGM"] and mdef.root[-1].tag == "UNT"
    node = _group(mdef.root, group)
    assert (node.tag, node.mandatory, node.max_repeat) == (trigger, mandatory, max_repeat)
    assert _path_to(mdef.root, group) == nesting


def test_directory_is_loaded_once_per_process(edifact_dir):
    assert load_directory(edifact_dir, "96B") is load_directory(edifact_dir, "96b")
    directory = load_directory(edifact_dir, "16A")
    assert directory.message("CUSCAR") is directory.message("CUSCAR")


@pytest.mark.parametrize(("version", "message"), [("96B", "NOSUCH"), ("16A", "XXXXXX")])
def test_unknown_message_is_none(edifact_dir, version, message):
    assert load_directory(edifact_dir, version).message(message) is None


def test_missing_directory_names_the_file_and_remedy(tmp_path):
    with pytest.raises(DirectoryError) as err:
        load_directory(tmp_path, "01B")
    assert "d01b.zip" in err.value.message and "SCITI_EDIFACT_DIR" in (err.value.remedy or "")


def test_unclosed_group_in_a_table_is_an_error():
    table = "Segment table\n\n0010   UNH Message header   M   1\n0020   ---- Segment group 1 ---- C   9---+\n"
    table += "0030   RFF Reference                   M   1    |\n"
    with pytest.raises(DirectoryError, match="never closed"):
        parse_message_table(table, "TEST", "99Z")
