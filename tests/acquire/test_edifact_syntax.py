"""EDIFACT tokenizer: service string advice, release character, repetition separator, line breaks."""

from __future__ import annotations

import pytest

from sciti.acquire.formats.edifact.syntax import Separators, read_service_string, split_segment, tokenize

DEFAULT = Separators()
V3 = Separators(repetition="")


@pytest.mark.parametrize(
    ("body", "seps", "tag", "elements", "repeats"),
    [
        ("BGM+85+MAN1+9", DEFAULT, "BGM", [["85"], ["MAN1"], ["9"]], None),
        ("FTX+AAA+++MEN?'S T?+SHIRTS", DEFAULT, "FTX", [["AAA"], [""], [""], ["MEN'S T+SHIRTS"]], None),
        ("FTX+AAA+++A?:B:C", DEFAULT, "FTX", [["AAA"], [""], [""], ["A:B", "C"]], None),
        ("FTX+AAA+++50?? OFF", DEFAULT, "FTX", [["AAA"], [""], [""], ["50? OFF"]], None),
        ("LOC+5*6+CNSHA", DEFAULT, "LOC", [["5"], ["CNSHA"]], {0: [["6"]]}),
        ("LOC+5*6+CNSHA", V3, "LOC", [["5*6"], ["CNSHA"]], None),
        ("NAD+CN+?*STAR*2:X", DEFAULT, "NAD", [["CN"], ["*STAR"]], {1: [["2", "X"]]}),
        ("UNS+D", DEFAULT, "UNS", [["D"]], None),
    ],
)
def test_split_segment(body, seps, tag, elements, repeats):
    assert split_segment(body, seps) == (tag, elements, repeats)


@pytest.mark.parametrize(
    ("text", "seps", "tags", "unterminated"),
    [
        ("UNB+UNOC:3+A+B+261120:0815+1'UNH+1'UNT+2+1'UNZ+1+1'", DEFAULT, ["UNB", "UNH", "UNT", "UNZ"], None),
        ("UNB+X'\r\nUNH+1'\nUNT+2+1'\n", DEFAULT, ["UNB", "UNH", "UNT"], None),
        ("UNB+X'FTX+A?'B'UNT+2+1", DEFAULT, ["UNB", "FTX"], "UNT+2+1"),
        ("UNB+X'FTX+A??'UNT'", DEFAULT, ["UNB", "FTX", "UNT"], None),
        ("UNB+X'FTX+AB?", DEFAULT, ["UNB"], "FTX+AB?"),
        ("UNB|X~LOC|5!A~", Separators("!", "|", ".", "", "", "~"), ["UNB", "LOC"], None),
        ("UNB+X''UNH+1'", DEFAULT, ["UNB", "UNH"], None),
    ],
)
def test_tokenize(text, seps, tags, unterminated):
    tokens = tokenize(text, seps)
    assert [s.tag for s in tokens.segments] == tags
    assert [s.index for s in tokens.segments] == list(range(1, len(tags) + 1))
    assert tokens.unterminated == unterminated


def test_segment_offsets_cut_back_the_original_text():
    text = "UNB+X'\nFTX+AAA+++IT?'S'\nUNT+2+1'"
    seg = tokenize(text, DEFAULT).segments[1]
    assert text[seg.start : seg.end] == "FTX+AAA+++IT?'S'"
    assert seg.get(3, 0) == "IT'S" and seg.get(9, 9) == ""


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"UNA:+.? 'UNB+", (Separators(":", "+", ".", "?", "", "'"), 9)),
        (b"UNA:+,?*'UNB+", (Separators(":", "+", ",", "?", "*", "'"), 9)),
        (b"UNB+UNOC:3", (Separators(), 0)),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"<?xml", None),
    ],
)
def test_service_string_advice(head, expected):
    assert read_service_string(head) == expected
