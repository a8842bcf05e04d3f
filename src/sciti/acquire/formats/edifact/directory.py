"""The official UN/EDIFACT directories (as UNECE publishes them), parsed into structures we check against.

UNECE ships each release as a zip of zips holding fixed-width text: the segment directory
(EDSD, or TRSD before 2000) lists every segment with its elements, composites, statuses and
formats; the message directory (EDMD / TRMD) holds one file per message with its segment table.
We read them straight from ``settings.edifact_dir`` (``d96b.zip``, ``d16a.zip`` ...), parse once
per process and version, and keep the result in memory: parsing a directory takes well under a
second, so a disk cache would add invalidation problems for no real gain.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciti.errors import ConfigError

# Both generations of the directory are plain 8-bit text; CP437 decodes the box-drawing
# characters of the older releases and is identical to ASCII for the newer ones.
_ENCODING = "cp437"
_CHANGE = r"[*+#|X-]{0,2}"  # change indicator column (addition, amendment, deletion ...)
_SEPARATOR = re.compile(r"^[-\u2500\u00c4]{20,}\s*$")
_SEG_HEAD = re.compile(rf"^\s*{_CHANGE}\s*([A-Z][A-Z0-9]{{2}})\s{{2,}}([A-Z][A-Z0-9 /,&().'-]+?)\s*$")
_ELEMENT = re.compile(
    rf"^(\d{{3}})\s+{_CHANGE}\s*([A-Z]?\d{{3,4}})\s+(.+?)\s+([MC])\s*(\d*)\s*((?:an|a|n)\.{{0,2}}\d+)?\s*$"
)
_COMPONENT = re.compile(rf"^\s+{_CHANGE}\s*(\d{{4}})\s+(.+?)\s+([MC])\s+((?:an|a|n)\.{{0,2}}\d+)\s*$")
_FORMAT = re.compile(r"^(an|a|n)(\.\.)?(\d+)$")
_TABLE_SEGMENT = re.compile(rf"^(\d{{4,5}})\s+{_CHANGE}\s*([A-Z]{{3}})\s+(.+?)\s+([MC])\s+(\d+)(.*)$")
_TABLE_GROUP = re.compile(
    rf"^(\d{{4,5}})\s+{_CHANGE}\s*[-\u2500\u00c4]+\s*Segment group\s+(\d+)\s*\S*\s+([MC])\s+(\d+)"
)
# Characters closing a segment group at the end of a segment-table line: the older directories
# draw boxes (CP437 corners), the newer ones use ASCII '+'.
_CLOSERS = ("\u2518", "\u2534", "+")


class DirectoryError(ConfigError):
    """The UN/EDIFACT directory for a version is missing or cannot be read."""

    code = "edifact_directory_error"


@dataclass(frozen=True, slots=True)
class Format:
    """A data element's representation: ``an..35`` = alphanumeric, at most 35 characters."""

    kind: str  # "a", "n" or "an"
    max_length: int
    fixed: bool

    @classmethod
    def parse(cls, text: str) -> Format:
        m = _FORMAT.match(text)
        if not m:
            raise ValueError(f"bad format {text!r}")
        return cls(kind=m.group(1), max_length=int(m.group(3)), fixed=m.group(2) is None)

    def __str__(self) -> str:
        return f"{self.kind}{'' if self.fixed else '..'}{self.max_length}"


@dataclass(frozen=True, slots=True)
class Component:
    code: str
    name: str
    mandatory: bool
    format: Format


@dataclass(frozen=True, slots=True)
class ElementDef:
    """A position in a segment: a simple data element (``format``) or a composite (``components``)."""

    position: str
    code: str
    name: str
    mandatory: bool
    repeat: int
    format: Format | None = None
    components: tuple[Component, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentDef:
    tag: str
    name: str
    elements: tuple[ElementDef, ...]


@dataclass(slots=True)
class Node:
    """A position in a message's segment table: a segment, or a group (``children`` set)."""

    tag: str  # the segment tag; for a group, the tag of its first (trigger) segment
    name: str
    mandatory: bool
    max_repeat: int
    position: str
    group: int | None = None
    children: list[Node] = field(default_factory=list)
    # For a group: the positions after the trigger, and where each tag may appear among them.
    body: list[Node] = field(default_factory=list)
    body_index: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"group {self.group}" if self.group is not None else f"segment {self.tag}"


def tag_index(nodes: list[Node]) -> dict[str, tuple[int, ...]]:
    """Positions in ``nodes`` that a segment with each tag may take (a group by its trigger)."""
    out: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        out.setdefault(node.tag, []).append(k)
    return {tag: tuple(ks) for tag, ks in out.items()}


@dataclass(slots=True)
class MessageDef:
    type: str
    version: str
    root: list[Node]
    tags: frozenset[str]
    root_index: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class Directory:
    """One release of the UN/EDIFACT directory (e.g. ``D.96B``): segments and, on demand, messages."""

    version: str  # "96B", "16A"
    segments: dict[str, SegmentDef]
    _zip: zipfile.ZipFile = field(repr=False)
    _messages: dict[str, MessageDef | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        return f"D.{self.version}"

    def message(self, message_type: str) -> MessageDef | None:
        """The message structure, or None when this directory has no such message."""
        with self._lock:
            if message_type not in self._messages:
                text = _read_member(self._zip, ("edmd", "trmd"), f"{message_type}_D.{self.version}")
                self._messages[message_type] = (
                    None if text is None else parse_message_table(text, message_type, self.version)
                )
            return self._messages[message_type]


def _read_member(outer: zipfile.ZipFile, inner_prefixes: tuple[str, ...], name: str) -> str | None:
    """Find ``name`` inside one of the inner zips (or directly in the outer one) and decode it."""
    wanted = name.upper()
    for info in outer.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base.upper() == wanted:
            return outer.read(info).decode(_ENCODING)
    for info in outer.infolist():
        base = info.filename.rsplit("/", 1)[-1].lower()
        if base.endswith(".zip") and base.startswith(inner_prefixes):
            with zipfile.ZipFile(io.BytesIO(outer.read(info))) as inner:
                for member in inner.infolist():
                    if member.filename.rsplit("/", 1)[-1].upper() == wanted:
                        return inner.read(member).decode(_ENCODING)
    return None


def _logical_lines(lines: list[str]) -> list[str]:
    """Join element lines whose long names wrap onto the next line."""
    out: list[str] = []
    for line in lines:
        if out and line.strip() and line.startswith(" ") and _pending(out[-1]):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _pending(line: str) -> bool:
    """An element/component line cut before its status and format (its name wrapped)."""
    if re.match(r"^\d{3}\s", line):
        return not _ELEMENT.match(line)
    return bool(re.match(rf"^\s+{_CHANGE}\s*\d{{4}}\s", line)) and not _COMPONENT.match(line)


def parse_segment_directory(text: str) -> dict[str, SegmentDef]:
    """Parse EDSD/TRSD text into segment definitions, keyed by tag."""
    segments: dict[str, SegmentDef] = {}
    # A segment starts at its heading (tag + name) followed by a "Function:" line; the separator
    # rules between segments are not reliable in the older directories.
    raw = [ln for ln in text.replace("\r", "").split("\n") if ln.strip() and not _SEPARATOR.match(ln)]
    starts = [i for i, ln in enumerate(raw[:-1]) if _SEG_HEAD.match(ln) and "Function:" in raw[i + 1]]
    for n, i in enumerate(starts):
        head = _SEG_HEAD.match(raw[i])
        assert head is not None
        lines = raw[i + 2 : starts[n + 1] if n + 1 < len(starts) else len(raw)]
        elements: list[ElementDef] = []
        composite: dict[str, Any] | None = None
        for line in _logical_lines(lines):
            m = _ELEMENT.match(line)
            if m:
                if composite:
                    elements.append(ElementDef(**composite))
                    composite = None
                pos, code, name, status, repeat, fmt = m.groups()
                base: dict[str, Any] = {
                    "position": pos,
                    "code": code,
                    "name": name.strip(),
                    "mandatory": status == "M",
                    "repeat": int(repeat or 1),
                }
                if fmt:
                    elements.append(ElementDef(**base, format=Format.parse(fmt)))
                else:
                    composite = {**base, "components": ()}
                continue
            c = _COMPONENT.match(line)
            if c and composite is not None:
                code, name, status, fmt = c.groups()
                composite["components"] += (Component(code, name.strip(), status == "M", Format.parse(fmt)),)
        if composite:
            elements.append(ElementDef(**composite))
        tag = head.group(1)
        segments[tag] = SegmentDef(tag=tag, name=head.group(2).strip().title(), elements=tuple(elements))
    return segments


def parse_message_table(text: str, message_type: str, version: str) -> MessageDef:
    """Parse the segment table of a message (EDMD/TRMD file) into a tree of nodes."""
    start = text.rfind("Segment table")
    if start < 0:
        raise DirectoryError(f"{message_type} D.{version}: no segment table in the message directory")
    root: list[Node] = []
    stack: list[Node] = []
    tags: set[str] = set()
    for line in text[start:].replace("\r", "").split("\n"):
        g = _TABLE_GROUP.match(line)
        if g:
            pos, number, status, repeat = g.groups()
            node = Node(
                tag="",
                name=f"Segment group {number}",
                mandatory=status == "M",
                max_repeat=int(repeat),
                position=pos,
                group=int(number),
            )
            (stack[-1].children if stack else root).append(node)
            stack.append(node)
            continue
        s = _TABLE_SEGMENT.match(line)
        if not s:
            continue
        pos, tag, name, status, repeat, tail = s.groups()
        node = Node(tag=tag, name=name.strip(), mandatory=status == "M", max_repeat=int(repeat), position=pos)
        parent = stack[-1] if stack else None
        (parent.children if parent else root).append(node)
        if parent is not None and not parent.tag:
            parent.tag = tag  # a group is entered through its first segment
        tags.add(tag)
        for _ in range(sum(tail.count(ch) for ch in _CLOSERS)):
            if stack:
                stack.pop()
    if stack:
        raise DirectoryError(f"{message_type} D.{version}: segment group {stack[-1].group} is never closed")
    _prepare(root)
    return MessageDef(
        type=message_type, version=version, root=root, tags=frozenset(tags), root_index=tag_index(root)
    )


def _prepare(nodes: list[Node]) -> None:
    for node in nodes:
        if node.group is not None:
            node.body = node.children[1:]
            node.body_index = tag_index(node.body)
            _prepare(node.children)


_CACHE: dict[tuple[str, str], Directory] = {}
_CACHE_LOCK = threading.Lock()


def directory_zip(edifact_dir: Path, version: str) -> Path:
    return Path(edifact_dir) / f"d{version.lower()}.zip"


def load_directory(edifact_dir: Path, version: str) -> Directory:
    """The parsed directory for ``version`` (``96B``), loaded once per process.

    Raises DirectoryError when the zip is missing or holds no segment directory.
    """
    fast = (str(edifact_dir), version)
    if fast in _CACHE:  # the common case, once per message: no path arithmetic
        return _CACHE[fast]
    path = directory_zip(edifact_dir, version)
    key = (str(Path(path).resolve()), version.upper())
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE[fast] = _CACHE[key]
            return _CACHE[key]
        if not path.is_file():
            raise DirectoryError(
                f"UN/EDIFACT directory D.{version.upper()} not found at {path}",
                remedy="put the UNECE directory zip there or set SCITI_EDIFACT_DIR",
            )
        try:
            outer = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
            text = _read_member(outer, ("edsd", "trsd"), f"EDSD.{version.upper()}") or _read_member(
                outer, ("edsd", "trsd"), f"TRSD.{version.upper()}"
            )
        except (OSError, zipfile.BadZipFile) as exc:
            raise DirectoryError(
                f"cannot read {path}: {exc}", remedy="replace it with the file UNECE publishes"
            ) from None
        if text is None:
            raise DirectoryError(
                f"{path} holds no segment directory (EDSD/TRSD)", remedy="use the UNECE zip as published"
            )
        directory = Directory(version=version.upper(), segments=parse_segment_directory(text), _zip=outer)
        _CACHE[key] = _CACHE[fast] = directory
        return directory
