"""EDIFACT reader: valid CUSCAR/CUSDEC interchanges in D.96B and D.16A are parsed; every kind of
broken interchange becomes a Rejected with a reason naming the segment, never an exception.

Valid interchanges are hand-written in tests/fixtures/edifact/ from the official directories; the
broken ones are derived from them in memory, one fault each, and checked against the real
directories in the shared data folder (``settings.edifact_dir``).
"""

from __future__ import annotations

import random
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from sciti.acquire.formats.edifact import read
from sciti.acquire.items import Parsed, Rejected

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edifact"
VALID = {
    "cuscar_d96b.edi": ("CUSCAR", 2),
    "cuscar_d16a.edi": ("CUSCAR", 1),
    "cusdec_d96b.edi": ("CUSDEC", 1),
    "cusdec_d16a.edi": ("CUSDEC", 1),
}


@pytest.fixture
def ctx(settings):
    return types.SimpleNamespace(settings=settings)


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def recount(segs: list[str]) -> list[str]:
    """Set every UNT count to the true number of segments, as a sender would."""
    out, count = [], 0
    for seg in segs:
        count = 1 if seg.startswith("UNH") else count + 1
        if seg.startswith("UNT+"):
            ref = seg.rstrip("'").split("+")[2]
            seg = f"UNT+{count}+{ref}'"
        out.append(seg)
    return out


def run(
    ctx, data: bytes | str, options: dict | None = None, unit: str = "test.edi"
) -> list[Parsed | Rejected]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(read(raw, unit=unit, options=options or {}, ctx=ctx))


def message_items(items):
    return [i for i in items if "#msg=" in i.locator]


def envelope_items(items):
    return [i for i in items if "#interchange=" in i.locator]


@pytest.mark.parametrize(("name", "expected"), sorted(VALID.items()))
def test_valid_interchanges_parse(ctx, name, expected):
    message, count = expected
    items = run(ctx, (FIXTURES / name).read_bytes(), {"message": message}, unit=name)
    assert all(isinstance(i, Parsed) for i in items), [getattr(i, "reason", "") for i in items]
    assert len(items) == count
    for item in items:
        assert item.locator.startswith(f"{name}#msg=") and item.locator.endswith(";seg=1")
        # the message in an interchange of its own, which reads back as that very message
        tags = [line[:3] for line in item.raw.splitlines()]
        assert tags[: tags.index("UNB")] in ([], ["UNA"]) and tags[tags.index("UNB") + 1] == "UNH"
        assert item.raw.rstrip().endswith("'") and "UNZ+1+" in item.raw
        [again] = run(ctx, item.raw.encode("utf-8"), {"message": message}, unit="again.edi")
        assert isinstance(again, Parsed) and again.records == item.records


def _insert_after(tag: str, *new: str) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        i = next(k for k, s in enumerate(segs) if s.startswith(tag))
        return [*segs[: i + 1], *new, *segs[i + 1 :]]

    return edit


def _drop(prefix: str, count: int = 1) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        out, left = [], count
        for s in segs:
            if left and s.startswith(prefix):
                left -= 1
                continue
            out.append(s)
        return out

    return edit


def _replace(old: str, new: str) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        text = "\n".join(segs)
        assert old in text, old
        return text.replace(old, new, 1).split("\n")

    return edit


def _move_after(prefix: str, anchor: str) -> Callable[[list[str]], list[str]]:
    def edit(segs: list[str]) -> list[str]:
        seg = next(s for s in segs if s.startswith(prefix))
        rest = [s for s in segs if s is not seg]
        i = next(k for k, s in enumerate(rest) if s.startswith(anchor))
        return [*rest[: i + 1], seg, *rest[i + 1 :]]

    return edit


# (fixture, edit, recount UNT?, the message's segment number reported, words the reason must hold)
MESSAGE_FAULTS = [
    ("cuscar_d96b.edi", _insert_after("BGM", "XYZ+1'"), True, 3, ["'XYZ'", "unknown segment tag", "D.96B"]),
    ("cuscar_d16a.edi", _insert_after("BGM", "ALC+A'"), True, 3, ["segment ALC is not part of CUSCAR D.16A"]),
    ("cuscar_d96b.edi", _drop("BGM"), True, 2, ["mandatory segment BGM", "missing"]),
    ("cuscar_d96b.edi", _drop("GID+1+1500"), True, 0, ["mandatory group 14", "group 8"]),
    (
        "cuscar_d96b.edi",
        _insert_after("DTM+137", *["DTM+137:202611200815:203'"] * 9),
        True,
        12,
        ["'DTM'", "repeated 10 times", "at most 9"],
    ),
    ("cuscar_d96b.edi", _move_after("DTM+137", "EQD+CN+MSCU"), True, 0, ["'DTM'", "out of order"]),
    ("cusdec_d16a.edi", _move_after("UNS+D", "FTX+AAA+++BICYCLE BRAKES"), True, 0, ["UNS"]),
    (
        "cuscar_d96b.edi",
        _replace("UNT+52+0001'", "UNT+99+0001'"),
        False,
        52,
        ["'UNT'", "counts 99 segments", "has 52"],
    ),
    ("cuscar_d96b.edi", _replace("UNT+52+0001'", "UNT+52+0009'"), False, 52, ["reference '0009'", "'0001'"]),
    (
        "cuscar_d96b.edi",
        _replace("BGM+85+MAN2611200001+9'", "BGM+85+" + "M" * 40 + "+9'"),
        True,
        2,
        ["C106/1004", "40 characters long", "an..35"],
    ),
    ("cuscar_d16a.edi", _replace("BGM+85+MAEU", "BGM+85+" + "M" * 40), True, 2, []),  # an..70 in D.16A: fine
    ("cuscar_d96b.edi", _replace("LOC+5+CNSHA", "LOC++CNSHA"), True, 0, ["mandatory data element 3227"]),
    (
        "cuscar_d96b.edi",
        _replace("GID+1+1200:CT'", "GID+1+12OO:CT'"),
        True,
        0,
        ["C213/7224", "numeric", "12OO"],
    ),
    ("cuscar_d96b.edi", _replace("TMP+2+-018:CEL'", "TMP+2+-18:CEL'"), True, 0, ["exactly 3 characters"]),
    (
        "cuscar_d96b.edi",
        _replace("BGM+85+MAN2611200001+9'", "BGM+85+MAN2611200001+9+1+2+3+4'"),
        True,
        2,
        ["has 7 data elements", "at most 4"],
    ),
    ("cuscar_d16a.edi", _replace("LOC+5+SGSIN", "LOC+5*6+SGSIN"), True, 0, ["3227 repeated 2 times"]),
    (
        "cuscar_d96b.edi",
        _replace("UNH+0001+CUSCAR:D:96B:UN'", "UNH+0001+CUSCAR:D:01B:UN'"),
        True,
        1,
        ["directory D.01B is not available", "d01b.zip"],
    ),
    (
        "cuscar_d96b.edi",
        _replace("UNH+0001+CUSCAR:D:96B:UN'", "UNH+0001+CUSCAR:S:93A:UN'"),
        True,
        1,
        ["only UN directory messages"],
    ),
    (
        "cuscar_d96b.edi",
        _replace("UNH+0001+CUSCAR:D:96B:UN'", "UNH+0001+IFTMIN:D:96B:UN'"),
        True,
        1,
        ["IFTMIN"],
    ),
    (
        "cuscar_d96b.edi",
        _replace("CNI+2+EGLV142600012346'\nRFF+BM:EGLV142600012346'", "CNI+2'\nRFF+ZZZ:'"),
        True,
        42,
        ["'RFF'", "has no transport document number"],
    ),
]


@pytest.mark.parametrize(("name", "edit", "fix_count", "position", "words"), MESSAGE_FAULTS)
def test_message_faults_are_rejected_with_reasons(ctx, name, edit, fix_count, position, words):
    segs = edit(lines(name))
    if fix_count:
        segs = recount(segs)
    items = run(ctx, "\n".join(segs), {"message": VALID[name][0]}, unit=name)
    messages = message_items(items)
    assert len(messages) == VALID[name][1], "every message is stored or rejected, exactly once"
    rejected = [i for i in messages if isinstance(i, Rejected)]
    if not words:  # the control case: the same edit is valid in the other directory
        assert not rejected, rejected
        return
    assert len(rejected) == 1, [i.locator for i in messages]
    reason = rejected[0].reason
    for word in words:
        assert word in reason, reason
    assert reason.startswith("message ") and "(UNH ref " in reason
    assert "interchange segment" in reason or position == 1
    if position:
        assert rejected[0].locator.endswith(f";seg={position}"), (rejected[0].locator, reason)
    assert rejected[0].raw and "\nUNH+" in rejected[0].raw and rejected[0].raw.startswith(("UNA", "UNB"))
    assert not envelope_items(items), "a message fault is not an interchange fault"


def test_the_repetition_limit_of_a_group_is_enforced(ctx):
    """10,000 EQD groups where D.96B allows 9,999: the 10,000th is named."""
    segs = lines("cuscar_d96b.edi")
    i = segs.index("EQD+CN+CMAU3188555+22G1:102:5+2++4'")
    segs[i:i] = ["EQD+CN+MSCU1234566+22G1:102:5+2++5'"] * 9997
    items = run(ctx, "\n".join(recount(segs)))
    reason = message_items(items)[0].reason
    assert "segment 10018 (interchange segment 10019) 'EQD': group 5 repeated 10000 times" in reason
    assert "directory D.96B allows at most 9999 in the CUSCAR message" in reason
    assert isinstance(message_items(items)[1], Parsed)


# Envelope faults: (edit of the whole text, messages still stored, words in the interchange reason)
def _text(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new, 1)


ENVELOPE_FAULTS = [
    (_text("UNZ+2+960000101'", "UNZ+3+960000101'"), 2, ["UNZ (segment", "counts 3 messages", "holds 2"]),
    (_text("UNZ+2+960000101'", "UNZ+2+960000999'"), 2, ["control reference '960000999'", "'960000101'"]),
    (_text("UNZ+2+960000101'\n", ""), 2, ["no UNZ trailer", "truncated"]),
    (
        _text(
            "UNB+UNOC:3+EGLV:ZZ+TWCUSTOMS:ZZ+261120:0815+960000101'",
            "UNB+UNOC:3+EGLV:ZZ+TWCUSTOMS:ZZ+2611:0815+960000101'",
        ),
        2,
        ["UNB date/time"],
    ),
    (_text("+261120:0815+960000101'", "+261120:0815'"), 2, ["interchange control reference (0020)"]),
    (_text("UNH+0002+", "CNT+7:1'\nUNH+0002+"), 2, ["segment 54 'CNT' is outside any message"]),
]


def _grouped(count: int, ref: str) -> Callable[[str], str]:
    """Wrap the two messages in a functional group (UNG..UNE); UNZ then counts groups."""

    def edit(text: str) -> str:
        text = text.replace("UNH+0001+", "UNG+CUSCAR+EGLV+TWCUSTOMS+261120:0815+77+UN+D:96B'\nUNH+0001+", 1)
        return text.replace("UNZ+2+", f"UNE+{count}+{ref}'\nUNZ+1+", 1)

    return edit


ENVELOPE_FAULTS += [
    (_grouped(3, "77"), 2, ["UNE (segment", "counts 3 messages", "holds 2"]),
    (_grouped(2, "78"), 2, ["UNE reference '78' does not match UNG reference '77'"]),
]


def test_functional_groups_are_counted(ctx):
    text = _grouped(2, "77")((FIXTURES / "cuscar_d96b.edi").read_text(encoding="utf-8"))
    assert [type(i) for i in run(ctx, text)] == [Parsed, Parsed]


@pytest.mark.parametrize(("edit", "stored", "words"), ENVELOPE_FAULTS)
def test_envelope_faults_keep_whole_messages(ctx, edit, stored, words):
    text = edit((FIXTURES / "cuscar_d96b.edi").read_text(encoding="utf-8"))
    items = run(ctx, text)
    assert sum(isinstance(i, Parsed) for i in message_items(items)) == stored
    env = envelope_items(items)
    assert len(env) == 1 and isinstance(env[0], Rejected)
    for word in words:
        assert word in env[0].reason, env[0].reason
    assert env[0].reason.startswith("interchange ")


def test_truncated_file_rejects_the_cut_message_and_the_interchange(ctx):
    data = (FIXTURES / "cuscar_d96b.edi").read_bytes()
    cut = data[: data.index(b"GID+1+10:PK") + 5]
    items = run(ctx, cut)
    parsed = [i for i in items if isinstance(i, Parsed)]
    assert [p.locator for p in parsed] == ["test.edi#msg=0001;seg=1"]
    msg2 = [i for i in message_items(items) if isinstance(i, Rejected)]
    assert len(msg2) == 1 and "has no UNT trailer" in msg2[0].reason and "the file ends" in msg2[0].reason
    env = envelope_items(items)
    assert len(env) == 1 and "no UNZ trailer" in env[0].reason and "ends inside a segment" in env[0].reason


def test_message_type_must_match_the_connector(ctx):
    items = run(ctx, (FIXTURES / "cusdec_d96b.edi").read_bytes(), {"message": "CUSCAR"})
    assert len(items) == 1 and isinstance(items[0], Rejected)
    assert "is a CUSDEC; this connector reads CUSCAR" in items[0].reason


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", ["empty file"]),
        (b"\n\r\n  ", ["empty file"]),
        (bytes(random.Random(7).getrandbits(8) for _ in range(4096)), ["not an EDIFACT interchange"]),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 64, ["not an EDIFACT interchange", "\\x1f\\x8b"]),
        (b"UNB+UNOX:3+A+B+261120:0815+1'", ["syntax identifier UNOX"]),
        (
            b"UNB+UNOA:3+A+B+261120:0815+1'UNH+1+CUSCAR:D:96B:UN'FTX+AAA+++CAF\xc9'",
            ["not valid ascii", "UNOA"],
        ),
        (b"UNB+UNOY:4+A+B+20261120:0815+1'UNH+1'FTX+AAA+++\xff\xfe'", ["not valid utf-8"]),
        (b"UNA:+.? 'UNB+UNOC:3+A+B+261120:0815+1", ["no complete segment"]),
    ],
)
def test_hostile_files_are_rejected_not_raised(ctx, data, words):
    items = run(ctx, data)
    assert len(items) == 1 and isinstance(items[0], Rejected)
    for word in words:
        assert word in items[0].reason, items[0].reason


def test_a_2mb_segment_is_rejected_with_its_length(ctx):
    segs = lines("cuscar_d96b.edi")
    i = next(k for k, s in enumerate(segs) if s.startswith("FTX+AAA+++SMARTPHONES"))
    segs[i] = "FTX+AAA+++" + "X" * 2_000_000 + "'"
    items = run(ctx, "\n".join(recount(segs)))
    bad = [i for i in message_items(items) if isinstance(i, Rejected)]
    assert len(bad) == 1 and "C108/4440" in bad[0].reason and "2000000 characters long" in bad[0].reason
    assert sum(isinstance(i, Parsed) for i in items) == 1


def test_odd_service_characters_give_the_same_records(ctx):
    """UNA declares other separators (and ',' as decimal mark): same records as the default ones."""
    text = (FIXTURES / "cuscar_d16a.edi").read_text(encoding="utf-8")
    body = text.split("\n", 1)[1]
    table = {":": "!", "+": "|", "*": "^", "'": "~", ".": ","}
    out, released = [], False
    for ch in body:  # translate service characters, keep released (literal) ones as they are
        if released:
            out.append(ch)
            released = False
        elif ch == "?":
            out.append("\\")
            released = True
        else:
            out.append(table.get(ch, ch))
    odd = "UNA!|,\\^~" + "".join(out)
    ours = run(ctx, text)
    theirs = run(ctx, odd)
    assert [type(i) for i in theirs] == [Parsed]
    assert theirs[0].records == ours[0].records
    assert ours[0].records["consignment"][0]["goods_description"].endswith("MEN'S COTTON T-SHIRTS")


@pytest.mark.parametrize("name", sorted(VALID))
def test_random_damage_never_raises(ctx, name):
    """Cut, flip and splice bytes of a valid file many times: always items, never an exception."""
    data = (FIXTURES / name).read_bytes()
    rng = random.Random(name)
    for _ in range(150):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(buf))
            action = rng.random()
            if action < 0.4:
                buf[pos] = rng.choice(b"+:'?*\x00ZA9 \n")
            elif action < 0.7:
                del buf[pos : pos + rng.randint(1, 40)]
            else:
                buf[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
        items = run(ctx, bytes(buf))
        assert items and all(isinstance(i, (Parsed, Rejected)) for i in items)
        assert all(i.reason for i in items if isinstance(i, Rejected))
