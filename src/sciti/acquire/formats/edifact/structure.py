"""Check one message against its official structure: segment order, groups, statuses, repetitions,
and the data elements of each segment (mandatory ones present, lengths and numeric formats).

The segment table is matched the way EDIFACT defines it: a group is entered through its first
(trigger) segment, segments are taken in table order, a tag that fits nowhere later in the current
group hands control back to the enclosing group. Every problem found becomes a ``Problem`` naming
the segment (its position in the message) and what is wrong; the caller turns them into a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciti.acquire.formats.edifact.directory import (
    Component,
    Directory,
    ElementDef,
    Format,
    MessageDef,
    Node,
)
from sciti.acquire.formats.edifact.syntax import Segment

# Stop collecting after this many problems: the first few tell a person what to fix.
MAX_PROBLEMS = 10
# Service segments inside a message are checked by the envelope code, not the segment directory.
_SERVICE = frozenset({"UNH", "UNT"})
_UNS = (ElementDef("010", "0081", "Section identification", True, 1, Format("a", 1, True)),)


@dataclass(frozen=True, slots=True)
class Problem:
    position: int  # 1-based segment number in the message (UNH = 1); 0 = the message as a whole
    segment: Segment | None
    text: str


class _Checker:
    def __init__(self, directory: Directory, message: MessageDef, segments: list[Segment]):
        self.directory = directory
        self.message = message
        self.segments = segments
        self.problems: list[Problem] = []
        self.specs = _SPECS.setdefault(id(directory), {})

    def add(self, i: int, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            seg = self.segments[i] if 0 <= i < len(self.segments) else None
            self.problems.append(Problem(i + 1 if seg else 0, seg, text))

    def where(self, group: Node | None) -> str:
        return f"group {group.group}" if group is not None else f"the {self.message.type} message"

    def run(self) -> list[Problem]:
        i = self._match(self.message.root, self.message.root_index, 0, None)
        if i < len(self.segments):
            self._stray(i)
        return self.problems

    def _stray(self, i: int) -> None:
        tag = self.segments[i].tag
        label = f"{self.message.type} {self.directory.label}"
        if tag in self.message.tags:
            self.add(i, f"out of order: {tag} is not allowed at this point of {label}")
        elif tag in self.directory.segments or tag in ("UNS", "UNH", "UNT"):
            self.add(i, f"segment {tag} is not part of {label}")
        else:
            self.add(i, f"unknown segment tag {tag!r}: not in directory {self.directory.label}")

    def _match(
        self, children: list[Node], index: dict[str, tuple[int, ...]], i: int, group: Node | None
    ) -> int:
        """Consume segments of one group instance (or the message) from ``i``; return the next index."""
        segs = self.segments
        n = len(segs)
        counts = [0] * len(children)
        pos = 0
        while i < n and len(self.problems) < MAX_PROBLEMS:
            tag = segs[i].tag
            j = -1
            for k in index.get(tag, ()):
                if k >= pos:
                    if j < 0:
                        j = k
                    if counts[k] < children[k].max_repeat:  # a full position hands over to a later one
                        j = k
                        break
            if j < 0:
                if group is None:  # nothing at the top level takes it: report and move on
                    self._stray(i)
                    i += 1
                    continue
                break
            for k in range(pos, j):
                if children[k].mandatory and counts[k] == 0:
                    self.add(
                        i,
                        f"mandatory {children[k].label} ({children[k].name}) is missing before "
                        f"this {tag} in {self.where(group)}",
                    )
            child = children[j]
            counts[j] += 1
            if counts[j] > child.max_repeat:
                self.add(
                    i,
                    f"{child.label} repeated {counts[j]} times, directory {self.directory.label} "
                    f"allows at most {child.max_repeat} in {self.where(group)}",
                )
            pos = j
            self._elements(i)
            if child.group is None:
                i += 1
            else:  # the trigger is consumed here; the rest of the group instance below
                i = self._match(child.body, child.body_index, i + 1, child)
        for k in range(pos, len(children)):
            if children[k].mandatory and counts[k] == 0:
                at = i if i < n else n - 1
                self.add(
                    at,
                    f"mandatory {children[k].label} ({children[k].name}) is missing in {self.where(group)}",
                )
        return i

    def _elements(self, i: int) -> None:
        seg = self.segments[i]
        tag = seg.tag
        if tag in _SERVICE:
            return
        spec = self.specs.get(tag)
        if spec is None:
            declared = _UNS if tag == "UNS" else self.directory.segments[tag].elements
            spec = self.specs[tag] = _spec(declared)
        defs, mandatory = spec
        values = seg.elements
        if len(values) > len(defs):
            self.add(
                i, f"has {len(values)} data elements, {tag} in {self.directory.label} has at most {len(defs)}"
            )
            return
        for k in mandatory:
            if k >= len(values) or values[k] == [""]:
                d = defs[k][0]
                self.add(i, f"mandatory data element {d.code} ({d.name}) at position {d.position} is empty")
        for k, comps in enumerate(values):
            d, fmt, components, required = defs[k]
            if fmt is not None:  # a simple data element
                if len(comps) > 1:
                    self.add(i, f"data element {d.code} ({d.name}) is simple but has {len(comps)} components")
                elif comps[0] and not _plausible(comps[0], fmt):
                    self._value(i, d.code, d.name, comps[0], fmt)
            elif comps != [""]:
                self._composite(i, d, components, required, comps)
        if seg.repeats:
            self._repeats(i, seg, defs)

    def _composite(
        self, i: int, d: ElementDef, components: tuple, required: tuple[int, ...], comps: list[str]
    ) -> None:
        if len(comps) > len(components):
            self.add(
                i,
                f"composite {d.code} ({d.name}) has {len(comps)} components, "
                f"at most {len(components)} allowed",
            )
            return
        limits = _limits(components)
        for c, value in enumerate(comps):
            if value:
                longest, fixed, free = limits[c]
                n = len(value)
                # fast path inline: fits when short enough and alphanumeric, or all digits
                if n > longest or fixed and n != longest or not (free or value.isdigit()):
                    comp = components[c]
                    self._value(i, f"{d.code}/{comp.code}", comp.name, value, comp.format)
        for c in required:
            if c >= len(comps) or not comps[c]:
                comp = components[c]
                self.add(i, f"mandatory component {d.code}/{comp.code} ({comp.name}) is empty")

    def _repeats(self, i: int, seg: Segment, defs: tuple) -> None:
        """Repetitions of elements (syntax version 4): allowed count, then each one as usual."""
        assert seg.repeats is not None
        for k, extra in seg.repeats.items():
            d, fmt, components, required = defs[k]
            if 1 + len(extra) > d.repeat:
                self.add(
                    i, f"data element {d.code} repeated {1 + len(extra)} times, at most {d.repeat} allowed"
                )
            for comps in extra:
                if fmt is not None:
                    if comps[0] and not _plausible(comps[0], fmt):
                        self._value(i, d.code, d.name, comps[0], fmt)
                elif comps != [""]:
                    self._composite(i, d, components, required, comps)

    def _value(self, i: int, code: str, name: str, value: str, fmt: Format) -> None:
        if fmt.kind == "n":
            digits = value.replace(".", "").replace(",", "").lstrip("-")
            length = len(digits)
            if not digits.isdigit():
                self.add(i, f"data element {code} ({name}) must be numeric ({fmt}), got {value[:40]!r}")
                return
        else:
            length = len(value)
            if fmt.kind == "a" and any(ch.isdigit() for ch in value):
                self.add(i, f"data element {code} ({name}) must be alphabetic ({fmt}), got {value[:40]!r}")
                return
        if length > fmt.max_length:
            self.add(
                i,
                f"data element {code} ({name}) is {length} characters long, {fmt} allows "
                f"at most {fmt.max_length}",
            )
        elif fmt.fixed and length != fmt.max_length:
            self.add(
                i,
                f"data element {code} ({name}) must be exactly {fmt.max_length} characters ({fmt}), "
                f"got {length}",
            )


# Per directory and tag: each element as (def, simple format, components, mandatory component
# positions), plus the positions of mandatory elements. Built once, on first use of the tag.
ElementSpec = tuple[ElementDef, Format | None, tuple[Component, ...], tuple[int, ...]]
SegmentSpec = tuple[tuple[ElementSpec, ...], tuple[int, ...]]
_SPECS: dict[int, dict[str, SegmentSpec]] = {}


def _spec(defs: tuple[ElementDef, ...]) -> SegmentSpec:
    elements = tuple(
        (d, d.format, d.components, tuple(c for c, comp in enumerate(d.components) if comp.mandatory))
        for d in defs
    )
    return elements, tuple(k for k, d in enumerate(defs) if d.mandatory)


_LIMITS: dict[int, tuple[tuple[int, bool, bool], ...]] = {}


def _limits(components: tuple) -> tuple[tuple[int, bool, bool], ...]:
    """(max length, fixed length, alphanumeric) per component: plain tuples read faster."""
    key = id(components)
    found = _LIMITS.get(key)
    if found is None:
        found = _LIMITS[key] = tuple(
            (c.format.max_length, c.format.fixed, c.format.kind == "an") for c in components
        )
    return found


def _plausible(value: str, fmt: Format) -> bool:
    """The fast path: True when the value surely fits; False sends it to the full check."""
    n = len(value)
    if n > fmt.max_length or fmt.fixed and n != fmt.max_length:
        return False
    if fmt.kind == "an":
        return True
    return fmt.kind == "n" and value.isdigit()


def check_message(directory: Directory, message: MessageDef, segments: list[Segment]) -> list[Problem]:
    """Problems found in ``segments`` (UNH..UNT of one message), at most MAX_PROBLEMS of them."""
    return _Checker(directory, message, segments).run()
