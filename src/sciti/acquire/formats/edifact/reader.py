"""The EDIFACT format reader: interchanges in, one Parsed or Rejected per message out.

Envelope rules (decided in docs/decisions/0007): each message (UNH..UNT) is judged on its own.
A message that is complete and valid against its directory is stored even when its interchange
is damaged (missing or wrong UNZ, stray segments between messages), because a message's own
UNT count and reference prove it arrived whole. The envelope problem is reported once, as a
Rejected whose locator names the interchange (``<unit>#interchange=<ref>;seg=<n>``). A message
cut short (no UNT) is always rejected. So every message received is stored or quarantined, and
envelope faults are quarantined in addition, never instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from sciti.acquire.formats.edifact.cuscar import MappingError, map_cuscar
from sciti.acquire.formats.edifact.cusdec import map_cusdec
from sciti.acquire.formats.edifact.directory import DirectoryError, load_directory
from sciti.acquire.formats.edifact.structure import check_message
from sciti.acquire.formats.edifact.syntax import (
    SYNTAX_ENCODINGS,
    Segment,
    Separators,
    gc_paused,
    read_service_string,
    tokenize,
)
from sciti.acquire.items import Parsed, Rejected

MAPPERS: dict[str, Callable[[list[Segment], str], dict[str, list[dict[str, Any]]]]] = {
    "CUSCAR": map_cuscar,
    "CUSDEC": map_cusdec,
}
_ENVELOPE_END = frozenset({"UNT", "UNH", "UNZ", "UNB", "UNG", "UNE"})
_CHUNK = 1000  # messages worked on per pause of the garbage collector (each resume costs a collection)
_SHOW = 60  # characters of offending input quoted in a reason


def _show(text: str) -> str:
    return repr(text[:_SHOW] + ("..." if len(text) > _SHOW else ""))


class _Interchange:
    """Walks one decoded interchange text and yields its messages' outcomes."""

    def __init__(self, text: str, unit: str, expected: str | None, settings: Any, seps: Separators, una: str):
        self.text = text
        self.unit = unit
        self.expected = expected.upper() if expected else None
        self.settings = settings
        self.seps = seps
        self.decimal = seps.decimal
        self.una = una  # the service string advice as received ("" when the file has none)
        self.unb = ""  # the interchange header being walked, as received
        self.unz = ""  # a trailer closing that header over ONE message
        self.number = 0  # messages seen in the file, for reasons ("message 3")
        self.cut: str | None = None  # text after the last terminator, until reported

    def envelope(self, ref: str, seg: Segment | None, problems: list[str], raw: str | None) -> Rejected:
        where = f"seg={seg.index}" if seg else "seg=0"
        return Rejected(
            locator=f"{self.unit}#interchange={ref or '?'};{where}",
            reason=f"interchange {ref or '(no reference)'}: " + "; ".join(problems),
            field="UNZ" if any("UNZ" in p for p in problems) else "UNB",
            raw=raw,
            details={"level": "interchange", "problems": problems},
        )

    def run(self, segs: list[Segment], unterminated: str | None) -> Iterator[Parsed | Rejected]:
        i, n = 0, len(segs)
        self.cut = unterminated
        while i < n:
            if segs[i].tag == "UNB":
                i = yield from self._one(segs, i)
                continue
            first = segs[i]
            while i < n and segs[i].tag != "UNB":
                i += 1
            rest = (
                f"{i - segs.index(first)} segments skipped up to the next UNB"
                if i < n
                else "the rest of the file is skipped"
            )
            yield self.envelope(
                "",
                first,
                [f"expected UNB at interchange segment {first.index}, found {first.tag!r}; {rest}"],
                self.text[first.start : first.end][:2000],
            )
        if self.cut:  # text after the last terminator that no interchange accounted for
            yield self.envelope(
                "",
                segs[-1],
                [
                    f"the file ends inside a segment after segment {segs[-1].index}: "
                    f"{_show(self.cut)} has no terminator"
                ],
                self.cut[:2000],
            )

    def _one(self, segs: list[Segment], i: int) -> Generator[Parsed | Rejected, None, int]:
        unb = segs[i]
        ref = unb.get(4)
        self.unb = self.text[unb.start : unb.end]
        e, t = self.seps.element, self.seps.terminator
        self.unz = f"UNZ{e}1{e}{_released(ref, self.seps)}{t}"
        problems = _check_unb(unb)
        i += 1
        n = len(segs)
        messages = groups = in_group = 0
        group_ref = ""
        while i < n and segs[i].tag not in ("UNZ", "UNB"):
            seg = segs[i]
            if seg.tag == "UNH":
                j = i + 1
                while j < n and segs[j].tag not in _ENVELOPE_END:
                    j += 1
                complete = j < n and segs[j].tag == "UNT"
                body = segs[i : j + 1] if complete else segs[i:j]
                messages += 1
                in_group += 1
                self.number += 1
                yield self.message(body, complete, segs[j] if j < n and not complete else None)
                i = j + 1 if complete else j
            elif seg.tag == "UNG":
                groups += 1
                group_ref, in_group = seg.get(4), 0
                i += 1
            elif seg.tag == "UNE":
                count = seg.get(0)
                if not (count.isdigit() and int(count) == in_group):
                    problems.append(
                        f"UNE (segment {seg.index}) counts {count or 'nothing'} messages, "
                        f"the functional group holds {in_group}"
                    )
                if seg.get(1) != group_ref:
                    problems.append(
                        f"UNE reference {seg.get(1)!r} does not match UNG reference {group_ref!r}"
                    )
                i += 1
            else:
                problems.append(
                    f"segment {seg.index} {seg.tag!r} is outside any message (not between UNH and UNT)"
                )
                i += 1
        if i < n and segs[i].tag == "UNZ":
            unz = segs[i]
            count, zref = unz.get(0), unz.get(1)
            expected = groups or messages
            if not (count.isdigit() and int(count) == expected):
                what = "functional groups" if groups else "messages"
                problems.append(
                    f"UNZ (segment {unz.index}) counts {count or 'nothing'} {what}, "
                    f"the interchange holds {expected}"
                )
            if zref != ref:
                problems.append(
                    f"UNZ control reference {zref!r} does not match UNB control reference {ref!r}"
                )
            end = unz
            i += 1
        else:
            last = segs[i - 1]
            cut = ""
            if i >= n and self.cut:
                cut, self.cut = f"; the file ends inside a segment: {_show(self.cut)}", None
            nxt = (
                f"the next interchange starts at segment {segs[i].index}"
                if i < n
                else "the file is truncated"
            )
            problems.append(f"no UNZ trailer after segment {last.index} {last.tag!r}: {nxt}{cut}")
            end = last
        if problems:
            raw = self.text[unb.start : unb.end] + (
                "\n" + self.text[end.start : end.end] if end is not unb else ""
            )
            yield self.envelope(ref, end if end.tag == "UNZ" else unb, problems, raw)
        return i

    def message(self, segs: list[Segment], complete: bool, stopper: Segment | None) -> Parsed | Rejected:
        unh = segs[0]
        ref = unh.get(0)
        mtype, ver, rel, agency = unh.get(1, 0), unh.get(1, 1), unh.get(1, 2), unh.get(1, 3)
        label = f"message {self.number} (UNH ref {ref or '?'})"
        # The message in its own interchange (the received UNA and UNB, a UNZ counting one
        # message): text a data engineer can correct and re-submit as it stands.
        raw = f"{self.una}{self.unb}\n{self.text[unh.start : segs[-1].end]}\n{self.unz}\n"

        def reject(position: int, reason: str, field: str | None = None) -> Rejected:
            seg = segs[position - 1] if 0 < position <= len(segs) else unh
            return Rejected(
                locator=f"{self.unit}#msg={ref or '?'};seg={position or 1}",
                reason=f"{label}: {reason}",
                field=field or seg.tag,
                raw=raw,
                details={"message_type": mtype, "version": f"{ver}.{rel}", "segment": seg.index},
            )

        if not complete:
            after = (
                f"the next segment is {stopper.tag!r} at interchange segment {stopper.index}"
                if stopper
                else "the file ends"
            )
            return reject(len(segs), f"has no UNT trailer: {after} (message truncated?)", "UNT")
        if not ref:
            return reject(1, "UNH has no message reference number (0062)", "UNH")
        if self.expected and mtype != self.expected:
            return reject(
                1, f"is a {mtype or 'message of no type'}; this connector reads {self.expected}", "UNH"
            )
        if ver != "D" or agency != "UN":
            return reject(
                1,
                f"UNH names {mtype}:{ver}:{rel}:{agency}; only UN directory messages "
                "(0052 'D', 0051 'UN') can be checked",
                "UNH",
            )
        if mtype not in MAPPERS:
            return reject(1, f"message type {mtype!r} has no mapping; SCITI maps {', '.join(MAPPERS)}", "UNH")
        try:
            directory = load_directory(self.settings.edifact_dir, rel)
        except DirectoryError as exc:
            return reject(1, f"directory D.{rel} is not available ({exc.message}); {exc.remedy}", "UNH")
        mdef = directory.message(mtype)
        if mdef is None:
            return reject(1, f"message type {mtype} is not defined in directory {directory.label}", "UNH")
        problems: list[tuple[int, str]] = []
        unt = segs[-1]
        count = unt.get(0)
        if not (count.isdigit() and int(count) == len(segs)):
            problems.append(
                (
                    len(segs),
                    f"counts {count or 'no'} segments, the message has {len(segs)} (UNH and UNT included)",
                )
            )
        if unt.get(1) != ref:
            problems.append((len(segs), f"reference {unt.get(1)!r} does not match UNH reference {ref!r}"))
        problems += [(p.position, p.text) for p in check_message(directory, mdef, segs)]
        if problems:
            parts = [
                f"segment {pos} (interchange segment {segs[pos - 1].index}) '{segs[pos - 1].tag}': {text}"
                for pos, text in problems
            ]
            return reject(problems[0][0], f"does not follow {mtype} {directory.label}: " + "; ".join(parts))
        try:
            records = MAPPERS[mtype](segs, self.decimal)
        except MappingError as exc:
            pos = exc.segment.index - unh.index + 1 if exc.segment is not None else 1
            return reject(pos, f"{_where(segs, pos)}: {exc}")
        except (ValueError, IndexError, KeyError, TypeError) as exc:  # a value shape we did not foresee
            return reject(1, f"cannot be mapped to canonical records: {type(exc).__name__}: {exc}")
        return Parsed(locator=f"{self.unit}#msg={ref};seg=1", records=records, raw=raw)


def _where(segs: list[Segment], position: int) -> str:
    """'segment 14 (interchange segment 120) 'EQD'' for a 1-based position in the message."""
    seg = segs[position - 1]
    return f"segment {position} (interchange segment {seg.index}) '{seg.tag}'"


def _released(value: str, seps: Separators) -> str:
    """``value`` as element text: each separator in it preceded by the release character."""
    if not seps.release:
        return value
    special = {seps.release, seps.element, seps.component, seps.terminator, seps.repetition} - {""}
    return "".join(seps.release + c if c in special else c for c in value)


def _check_unb(unb: Segment) -> list[str]:
    problems = []
    needs = [
        (0, 0, "syntax identifier (S001/0001)"),
        (0, 1, "syntax version (S001/0002)"),
        (1, 0, "sender identification (S002/0004)"),
        (2, 0, "recipient identification (S003/0010)"),
        (3, 0, "date of preparation (S004/0017)"),
        (3, 1, "time of preparation (S004/0019)"),
        (4, 0, "interchange control reference (0020)"),
    ]
    for e, c, what in needs:
        if not unb.get(e, c):
            problems.append(f"UNB (segment {unb.index}) has no {what}")
    date, time = unb.get(3, 0), unb.get(3, 1)
    if (
        date
        and (not date.isdigit() or len(date) not in (6, 8))
        or time
        and (not time.isdigit() or len(time) != 4)
    ):
        problems.append(f"UNB date/time {date}:{time} is not YYMMDD (or CCYYMMDD) and HHMM")
    if len(unb.get(4)) > 14:
        problems.append(f"UNB interchange control reference {_show(unb.get(4))} is longer than 14 characters")
    return problems


_SYNTAX_ID = re.compile(rb"\A\s*UNB(.)([A-Z]{4})(.)(\d)?")


def read(data: bytes, *, unit: str, options: dict, ctx: Any) -> Iterator[Parsed | Rejected]:
    """Read one EDIFACT file: yield a Parsed per valid message, a Rejected per bad message or envelope.

    ``options["message"]`` (e.g. ``CUSCAR``) restricts the messages accepted. Never raises on bad
    input: binary garbage, wrong encodings and truncation all become Rejected items.
    """
    options = options or {}
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    body = body.lstrip(b"\r\n\t ")
    if not body:
        yield Rejected(
            locator=f"{unit}#interchange=?;seg=0",
            reason="empty file: no EDIFACT interchange in it",
            details={"level": "interchange"},
        )
        return
    head = read_service_string(body[:9])
    if head is None:
        yield Rejected(
            locator=f"{unit}#interchange=?;seg=0",
            reason=f"not an EDIFACT interchange: it must start with UNA or UNB, it starts with {body[:16]!r}",
            raw=None,
            details={"level": "interchange"},
        )
        return
    seps, offset = head
    m = _SYNTAX_ID.match(body[offset:].replace(b"\r", b"").replace(b"\n", b"")[:64])
    syntax = m.group(2).decode() if m and m.group(1).decode("latin-1") == seps.element else ""
    encoding = SYNTAX_ENCODINGS.get(syntax)
    if encoding is None:
        yield Rejected(
            locator=f"{unit}#interchange=?;seg=1",
            reason=f"UNB syntax identifier {syntax or 'missing'!s} is not one SCITI reads "
            f"(use one of {', '.join(SYNTAX_ENCODINGS)}); first bytes {body[:32]!r}",
            field="UNB",
            details={"level": "interchange"},
        )
        return
    version = m.group(4).decode() if m and m.group(4) else "4"
    if version in ("1", "2", "3"):
        seps = replace(seps, repetition="")  # the repetition separator exists from version 4 only
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        yield Rejected(
            locator=f"{unit}#interchange=?;seg=0",
            reason=f"byte {exc.start} ({body[exc.start : exc.start + 1]!r}) is not valid {encoding} "
            f"as UNB syntax identifier {syntax} declares; re-send in the declared character set "
            "or declare the right one",
            field="UNB",
            details={"level": "interchange"},
        )
        return
    with gc_paused():
        tokens = tokenize(text, seps, start=offset)
    una = text[:offset] + "\n" if offset else ""
    walker = _Interchange(text, unit, options.get("message"), ctx.settings, seps, una)
    if not tokens.segments:
        yield Rejected(
            locator=f"{unit}#interchange=?;seg=0",
            reason=f"no complete segment: the text has no segment terminator {seps.terminator!r}",
            raw=text[:2000],
            details={"level": "interchange"},
        )
        return
    outcomes = walker.run(tokens.segments, tokens.unterminated)
    while True:  # work in chunks with the collector paused; hand them out with it running
        with gc_paused():
            chunk = list(islice(outcomes, _CHUNK))
        if not chunk:
            return
        yield from chunk
