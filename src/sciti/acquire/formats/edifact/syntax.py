"""UN/EDIFACT syntax (ISO 9735 versions 1-4): service characters, decoding and the tokenizer.

An interchange is cut into segments, segments into data elements, elements into components,
honouring the release character (``?'`` is a literal apostrophe) and, in syntax version 4, the
repetition separator. The common case (no release character anywhere) takes a fast path of plain
``str.split`` calls; only segments that contain a release character are scanned character by
character.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# The default service characters (ISO 9735 level A): component, element, decimal, release,
# repetition (v4; a space = none in earlier versions), segment terminator.
DEFAULT_UNA = ":+.?*'"

# Character repertoire named in UNB S001/0001 -> Python codec. Level A/B are subsets of ASCII.
SYNTAX_ENCODINGS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "latin-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
    "KECA": "euc-kr",
}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small lists.

    Tokens hold no reference cycles, so reference counting frees them anyway; without the pause
    the collector runs every few hundred allocations and costs three quarters of the time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Separators:
    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    repetition: str = "*"
    terminator: str = "'"

    @classmethod
    def from_una(cls, una: str) -> Separators:
        comp, elem, dec, rel, rep, term = tuple(una)
        # A space in a position means "not used" (v3 reserves the repetition position).
        return cls(comp, elem, dec, "" if rel == " " else rel, "" if rep == " " else rep, term)


class Segment:
    """One segment: its tag, elements (each a list of components) and where it sits.

    ``index`` is the 1-based position in the interchange (UNB = 1); ``start``/``end`` are character
    offsets into the decoded text, so a message's raw text can be cut out for quarantine.
    ``repeats`` holds, by element index, the extra repetitions of a repeating element (v4).
    """

    __slots__ = ("tag", "elements", "index", "start", "end", "repeats")

    def __init__(
        self,
        tag: str,
        elements: list[list[str]],
        index: int,
        start: int,
        end: int,
        repeats: dict[int, list[list[str]]] | None = None,
    ):
        self.tag = tag
        self.elements = elements
        self.index = index
        self.start = start
        self.end = end
        self.repeats = repeats

    def get(self, element: int, component: int = 0) -> str:
        """Value of an element/component (0-based, after the tag), '' when absent."""
        els = self.elements
        if element < len(els):
            comps = els[element]
            if component < len(comps):
                return comps[component]
        return ""

    def __repr__(self) -> str:
        return f"Segment({self.tag!r}, {self.elements!r}, index={self.index})"


@dataclass
class Tokens:
    """The result of tokenizing one interchange text."""

    segments: list[Segment]
    separators: Separators
    unterminated: str | None = None  # text after the last terminator (a truncated file)


def _unescape(value: str, release: str) -> str:
    return re.sub(re.escape(release) + "(.)", r"\1", value, flags=re.S) if release in value else value


def _split_escaped(text: str, sep: str, release: str) -> list[str]:
    """Split on ``sep`` unless released; release characters stay in (removed later per value)."""
    parts: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == release and i + 1 < n:
            buf.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def split_segment(
    body: str, seps: Separators
) -> tuple[str, list[list[str]], dict[int, list[list[str]]] | None]:
    """Split one segment's text (without terminator) into tag, elements and repetitions."""
    rel, rep = seps.release, seps.repetition
    if not rel or rel not in body:
        raw_elements = body.split(seps.element)
        tag = raw_elements[0]
        elements = [e.split(seps.component) for e in raw_elements[1:]]
        repeats = None
        if rep and rep in body:
            repeats = {}
            for i, e in enumerate(raw_elements[1:]):
                if rep in e:
                    first, *rest = e.split(rep)
                    elements[i] = first.split(seps.component)
                    repeats[i] = [r.split(seps.component) for r in rest]
        return tag, elements, repeats
    raw_elements = _split_escaped(body, seps.element, rel)
    tag = _unescape(raw_elements[0], rel)
    elements = []
    repeats = {}
    for i, e in enumerate(raw_elements[1:]):
        reps = _split_escaped(e, rep, rel) if rep else [e]
        comps = [[_unescape(c, rel) for c in _split_escaped(r, seps.component, rel)] for r in reps]
        elements.append(comps[0])
        if len(comps) > 1:
            repeats[i] = comps[1:]
    return tag, elements, repeats or None


def _segment_spans(text: str, start: int, seps: Separators) -> tuple[list[tuple[int, int]], int]:
    """(start, end) of each terminated segment from ``start``; returns the offset after the last one.

    A terminator preceded by an odd number of release characters is data (``?'``), an even number
    is a released release character followed by a real terminator (``??'``).
    """
    term, rel = seps.terminator, seps.release
    spans: list[tuple[int, int]] = []
    find = text.find
    pos = scan = start
    if not rel or find(rel, start) < 0:
        while True:
            end = find(term, pos)
            if end < 0:
                return spans, pos
            spans.append((pos, end))
            pos = end + 1
    while True:
        end = find(term, scan)
        if end < 0:
            return spans, pos
        k = end - 1
        while k >= pos and text[k] == rel:
            k -= 1
        if (end - 1 - k) % 2:  # released: part of the data, keep looking
            scan = end + 1
            continue
        spans.append((pos, end))
        pos = scan = end + 1


def tokenize(text: str, seps: Separators, start: int = 0, first_index: int = 1) -> Tokens:
    """Cut ``text`` (from offset ``start``) into segments.

    Line breaks between segments are not data (senders wrap lines at segment ends), so CR/LF
    and spaces ahead of a tag are skipped.
    """
    rel, rep, elem, comp = seps.release, seps.repetition, seps.element, seps.component
    if (rel and text.find(rel, start) >= 0) or (rep and text.find(rep, start) >= 0):
        return _tokenize_slow(text, seps, start, first_index)
    # Fast path: nothing is escaped and nothing repeats, so plain splits are exact.
    bodies = text[start:].split(seps.terminator)
    rest = bodies.pop().strip()
    segments: list[Segment] = []
    append = segments.append
    index = first_index
    pos = start
    for body in bodies:
        s = pos
        pos += len(body) + 1
        if body[:1] in _BLANKS:
            stripped = body.lstrip("\r\n\t ")
            if not stripped:
                continue  # an empty segment (e.g. "''") carries nothing; skipping keeps counts honest
            s += len(body) - len(stripped)
            body = stripped
        parts = body.split(elem)
        append(Segment(parts[0], [p.split(comp) for p in parts[1:]], index, s, pos))
        index += 1
    return Tokens(segments, seps, rest or None)


_BLANKS = frozenset({"", "\r", "\n", "\t", " "})  # "" = an empty segment


def _tokenize_slow(text: str, seps: Separators, start: int, first_index: int) -> Tokens:
    spans, after = _segment_spans(text, start, seps)
    segments: list[Segment] = []
    index = first_index
    for s, e in spans:
        body = text[s:e]
        stripped = body.lstrip("\r\n\t ")
        if not stripped:
            continue
        s += len(body) - len(stripped)
        tag, elements, repeats = split_segment(stripped, seps)
        segments.append(Segment(tag, elements, index, s, e + 1, repeats))
        index += 1
    rest = text[after:].strip()
    return Tokens(segments, seps, rest or None)


def read_service_string(head: bytes) -> tuple[Separators, int] | None:
    """Service characters from a UNA string at the start, and where the data after it begins.

    Returns None when the data starts with neither UNA nor UNB (not an interchange).
    """
    if head.startswith(b"UNA") and len(head) >= 9:
        una = head[3:9].decode("latin-1")
        return Separators.from_una(una), 9
    if head.startswith(b"UNB"):
        return Separators(), 0
    return None
