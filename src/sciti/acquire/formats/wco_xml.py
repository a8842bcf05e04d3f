"""Reader for WCO DEC XML declarations (WCO Data Model 3.x, DMS profile).

One received unit (a file or a message) holds one declaration, normally as ``md:MetaData`` around
a ``Declaration``; a bare ``Declaration`` root and a transport envelope around ``md:MetaData``
(e.g. a submitDeclarationRequest) are accepted too. Every declaration is validated against the
XSD in ``settings.wco_schema_dir`` (libxml2 through lxml, compiled once per folder and thread),
then mapped by :mod:`sciti.acquire.formats.wco_map`. A customs response (WCO RES, a DMS
notification) is mapped by :mod:`sciti.acquire.formats.wco_response` when the connector's kinds
include ``customs_response``, and refused as not a declaration otherwise.

Bad input never raises: empty, oversized, not well-formed, wrongly encoded or truncated files,
documents with a DTD (entity expansion and external-entity attacks), documents that are not a
WCO declaration and schema-invalid declarations each become one :class:`Rejected` whose reason
says what is wrong and where (line and element path).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from lxml import etree

from sciti.acquire.formats.wco_map import NS, map_declaration
from sciti.acquire.formats.wco_response import RESPONSE, find_responses, map_response
from sciti.acquire.items import Parsed, Rejected
from sciti.errors import ConfigError

NS_MD = "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2"
DECLARATION = f"{{{NS}}}Declaration"
METADATA = f"{{{NS_MD}}}MetaData"
SCHEMA_FILES = ("DocumentMetaData_2_DMS.xsd", "WCO_DEC_2_DMS.xsd")
DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # a 999-item declaration is a few MB; larger is not a DEC
MAX_ERRORS_IN_REASON = 3
# WCO message types (MetaData/WCOTypeName) named in reasons when something else than a DEC arrives.
WCO_TYPES = {"RES": "customs response (notification) message"}
RESPONSE_KIND = "customs_response"

DTD_REASON = (
    "the document declares a DTD (<!DOCTYPE ...>); WCO declarations never do, and DTD entities are "
    "an attack vector (entity expansion 'billion laughs', external entities), so it is refused"
)
DTD_MARKERS = (b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))

# One small schema that imports both entry points, so the metadata wrapper's strict wildcard
# finds the Declaration element of the DEC namespace.
_DRIVER = (
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
    f'<xs:import namespace="{NS_MD}" schemaLocation="{SCHEMA_FILES[0]}"/>'
    f'<xs:import namespace="{NS}" schemaLocation="{SCHEMA_FILES[1]}"/>'
    "</xs:schema>"
)

# lxml parsers and XMLSchema objects keep per-call state (error logs): one of each per thread.
_local = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        # Never resolve entities, never touch the network, never load a DTD, keep libxml2's size
        # limits (huge_tree off): a hostile document can cost no more than its own bytes.
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            # Comments and indentation are most of a DMS sample's bytes: dropping them at parse
            # time makes validation and mapping a fifth faster. Line numbers are kept.
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
        )
        _local.parser = parser
    return parser


def load_schema(schema_dir: Path) -> etree.XMLSchema:
    """The compiled DEC schema for ``schema_dir``, cached per folder and thread."""
    cache: dict[str, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    schema = cache.get(str(schema_dir))  # fast path: the same setting, read per unit
    if schema is None:
        key = str(Path(schema_dir).resolve())
        schema = cache.get(key) or _compile(Path(key))
        cache[key] = cache[str(schema_dir)] = schema
    return schema


def _compile(folder: Path) -> etree.XMLSchema:
    missing = [name for name in SCHEMA_FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"WCO schema folder {folder} lacks {', '.join(missing)}",
            remedy="point SCITI_WCO_SCHEMA_DIR (setting wco_schema_dir) at the folder holding "
            "WCO_DEC_2_DMS.xsd and its imports",
        )
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        driver = etree.fromstring(_DRIVER.encode(), parser, base_url=(folder / "driver.xsd").as_uri())
        return etree.XMLSchema(etree.ElementTree(driver))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigError(
            f"the WCO schemas in {folder} do not compile: {exc}",
            remedy="restore the published WCO_DEC_2_DMS.xsd set (with WCO_DS/ and UNECE/ subfolders)",
        ) from exc


def read(data: bytes, *, unit: str, options: dict[str, Any], ctx: Any) -> Iterator[Parsed | Rejected]:
    """Yield one Parsed per WCO declaration in ``data``, or one Rejected saying why not.

    ``options``: ``max_bytes`` (default 32 MiB) caps the size of one unit.
    """
    schema = load_schema(ctx.settings.wco_schema_dir)
    if isinstance(data, str):  # a corrected unit re-submitted as text
        data = data.encode("utf-8")
    max_bytes = int(options.get("max_bytes", DEFAULT_MAX_BYTES))
    base = f"{unit}#/Declaration"
    if not data or data.isspace():
        yield Rejected(base, "the file is empty: a WCO declaration was expected", raw="")
        return
    if len(data) > max_bytes:
        yield Rejected(
            base,
            f"the file is {len(data):,} bytes, over the {max_bytes:,} bytes accepted for one WCO declaration",
            details={"size": len(data), "max_bytes": max_bytes},
        )
        return
    # Refuse a DTD before libxml2 sees it: the reason is then the same whatever the DTD holds.
    if _declares_dtd(data):
        yield Rejected(f"{unit}#/", DTD_REASON, raw=_decode(data, None))
        return
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        yield _syntax_rejection(unit, data, exc)
        return
    raw = _decode(data, root.getroottree().docinfo.encoding)
    if root.getroottree().docinfo.internalDTD is not None:
        yield Rejected(f"{unit}#/", DTD_REASON, raw=raw)
        return
    found = find_declarations(root)
    if isinstance(found, str):
        responses = find_responses(root) if _is_response(root) else []
        if responses and takes_responses(ctx):
            yield from _map_responses(responses, unit, raw)
            return
        if responses:
            found += (
                "; to store customs responses, add customs_response and customs_response_duty to its kinds"
            )
        yield Rejected(f"{unit}#/{_local_name(root.tag)}", found, field=_local_name(root.tag), raw=raw)
        return
    for index, (target, decl) in enumerate(found, start=1):
        if len(found) == 1:
            yield _check_and_map(schema, target, decl, base, unit, raw)
            continue
        part = Part(index, len(found), target.sourceline)
        yield _check_and_map(
            schema, target, decl, f"{unit}#/Declaration[{index}]", unit, part_text(target), part
        )


def takes_responses(ctx: Any) -> bool:
    """Whether the connector stores WCO RES customs responses: its kinds say so (decision 0122)."""
    connector = getattr(ctx, "connector", None)
    return connector is not None and RESPONSE_KIND in connector.kinds


def _is_response(root: etree._Element) -> bool:
    if _local_name(root.tag) == RESPONSE:
        return True
    return any((el.text or "").strip() == "RES" for el in root.iter() if _local_name(el.tag) == "WCOTypeName")


def _map_responses(responses: list[etree._Element], unit: str, raw: str) -> Iterator[Parsed | Rejected]:
    for index, response in enumerate(responses, start=1):
        if len(responses) == 1:
            locator = f"{unit}#/Response"
        else:
            locator, raw = f"{unit}#/Response[{index}]", part_text(response)
        mapped = map_response(response)
        if isinstance(mapped, tuple):
            field, reason = mapped
            yield Rejected(locator, reason, field=field, raw=raw)
        else:
            yield Parsed(locator=locator, records=mapped, raw=raw)


def declaration_digests(data: bytes, unit: str) -> dict[str, str]:
    """Locator -> SHA-256 of each declaration in ``data``, as ``read`` names them: the message's own
    identity (docs/decisions/0114). The Declaration element is hashed in exclusive canonical form
    after the parser dropped comments and indentation, so a copy re-indented, re-encoded or in
    another envelope has the same digest. Unreadable input has none (an empty dict)."""
    if not data or _declares_dtd(data):  # the reader refused it already; never parse a DTD
        return {}
    try:
        found = find_declarations(etree.fromstring(data, _parser()))
    except (etree.XMLSyntaxError, ValueError):
        return {}
    if isinstance(found, str):
        return {}
    digests = {}
    for index, (_, decl) in enumerate(found, start=1):
        locator = f"{unit}#/Declaration" if len(found) == 1 else f"{unit}#/Declaration[{index}]"
        canonical = etree.tostring(decl, method="c14n", exclusive=True, with_comments=False)
        digests[locator] = hashlib.sha256(canonical).hexdigest()
    return digests


def find_declarations(root: etree._Element) -> list[tuple[etree._Element, etree._Element]] | str:
    """(element to validate, Declaration element) pairs, or a reason why this is not a declaration."""
    if root.tag == METADATA:
        decl = root.find(DECLARATION)
        if decl is None:
            kind = (root.findtext(f"{{{NS_MD}}}WCOTypeName") or "").strip()
            return _not_a_declaration(root, kind)
        return [(root, decl)]
    if root.tag == DECLARATION:
        return [(root, root)]
    # A transport envelope: take every MetaData (or bare Declaration) inside it.
    found = [(md, md.find(DECLARATION)) for md in root.iter(METADATA)]
    found += [
        (d, d) for d in root.iter(DECLARATION) if d.getparent() is None or d.getparent().tag != METADATA
    ]
    if found and all(decl is not None for _, decl in found):
        return [(target, decl) for target, decl in found if decl is not None]
    kind = (root.findtext("WCOTypeName") or root.findtext(f"{{{NS_MD}}}WCOTypeName") or "").strip()
    return _not_a_declaration(root, kind)


def _not_a_declaration(root: etree._Element, wco_type: str) -> str:
    name, ns = _local_name(root.tag), etree.QName(root).namespace
    if wco_type and wco_type != "DEC":
        what = WCO_TYPES.get(wco_type, f"WCO {wco_type} message")
        return (
            f"not a WCO declaration: this is a {what} (WCOTypeName {wco_type}, root '{name}'); "
            "this connector takes DEC declarations only"
        )
    where = f"in namespace '{ns}'" if ns else "without a namespace"
    return (
        f"not a WCO declaration: the root element is '{name}' {where}; expected md:MetaData "
        f"({NS_MD}) holding a Declaration ({NS})"
    )


class Part(NamedTuple):
    """Where one declaration of a file of several sits: its number, how many, its first line."""

    number: int
    of: int
    line: int | None


def part_text(el: etree._Element) -> str:
    """One part of a file of several (a MetaData, a Declaration, a Response) as a document of its
    own, with the namespaces it uses: what its quarantine entry holds, so that it can be corrected
    and re-submitted alone, and a file of a thousand parts is not kept once per bad part (0124)."""
    return etree.tostring(el, encoding="unicode", with_tail=False)


def _check_and_map(
    schema: etree.XMLSchema,
    target: etree._Element,
    decl: etree._Element,
    locator: str,
    unit: str,
    raw: str,
    part: Part | None = None,
) -> Parsed | Rejected:
    if not schema.validate(target):
        return _schema_rejection(schema.error_log, target, unit, raw, part)
    try:
        records = map_declaration(decl)
    except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as exc:
        # The schema let it through, so this is a gap in our mapping: keep the unit and say so.
        return Rejected(
            locator,
            f"schema-valid declaration could not be mapped ({type(exc).__name__}: {exc}); report it "
            "to the SCITI maintainers with this quarantine entry",
            raw=raw,
        )
    if not records["declaration"][0]["declaration_id"]:
        return Rejected(
            locator,
            "the declaration has neither ID (MRN) nor FunctionalReferenceID (LRN)",
            field="FunctionalReferenceID",
            raw=raw,
        )
    return Parsed(locator=locator, records=records, raw=raw)


_CLARK = re.compile(r"\{[^}]*\}")
_STEP = re.compile(r"^(?:[\w.-]+:)?([\w.*-]+)(?:\[(\d+)\])?$")
_ELEMENT_IN_MESSAGE = re.compile(r"^Element '([^']+)'")
# libxml2 phrasings -> plain words an officer or data engineer reads without the XSD at hand.
_REWRITES = (
    (
        re.compile(r"\[facet 'pattern'\] The value '(.*)' is not accepted by the pattern '(.*)'"),
        r"the value '\1' does not match the required pattern '\2'",
    ),
    (
        re.compile(
            r"\[facet '(?:maxLength|length)'\] The value has a length of '(\d+)'; this "
            r"(?:exceeds the allowed maximum length|differs from the allowed length) of '(\d+)'"
        ),
        r"the value is \1 characters long; at most \2 are allowed",
    ),
    (
        re.compile(
            r"\[facet 'minLength'\] The value has a length of '(\d+)'; this underruns the "
            r"allowed minimum length of '(\d+)'"
        ),
        r"the value is \1 characters long; at least \2 are required",
    ),
    (
        re.compile(r"\[facet 'enumeration'\] The value '(.*)' is not an element of the set \{(.*)\}"),
        r"the value '\1' is not one of the allowed codes \2",
    ),
    (
        re.compile(r"'(.*)' is not a valid value of the (?:local )?atomic type(?: '([^']*)')?"),
        r"'\1' is not a valid value for this element \2",
    ),
    (
        re.compile(r"This element is not expected\. Expected is(?: one of)? \( (.*) \)"),
        r"this element is not allowed here; the schema expects one of: \1",
    ),
    (re.compile(r"This element is not expected\."), "this element is not allowed here"),
    (
        re.compile(r"Missing child element\(s\)\. Expected is(?: one of)? \( (.*) \)"),
        r"a mandatory child element is missing; the schema expects: \1",
    ),
)


def resolve_path(roots: tuple[etree._Element, ...], path: str | None) -> etree._Element | None:
    """The element a libxml2 error path points at ('/MetaData/*[6]/*[5]'), or None.

    The path starts at the document root, or at the validated element when that is inside an
    envelope (lxml validates a subtree as its own document): ``roots`` lists both candidates.
    """
    if not path or not path.startswith("/"):
        return None
    steps = path.strip("/").split("/")
    first = _STEP.match(steps[0])
    root = next((r for r in roots if first and etree.QName(r).localname == first.group(1)), None)
    if root is None:
        return None
    node: etree._Element | None = None
    for i, step in enumerate(steps):
        match = _STEP.match(step)
        if match is None:
            return None
        name, index = match.group(1), int(match.group(2) or 1)
        if i == 0:
            node = root
            continue
        assert node is not None
        children = [
            c for c in node if isinstance(c.tag, str) and (name == "*" or etree.QName(c).localname == name)
        ]
        if index > len(children):
            return None
        node = children[index - 1]
    return node


def element_path(el: etree._Element) -> str:
    """Readable path of ``el`` from the Declaration, e.g. /Declaration/GoodsShipment/Importer."""
    steps: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        if node.tag == DECLARATION:
            break
        node = parent
    return "/" + "/".join(reversed(steps))


def describe(message: str) -> str:
    """libxml2's validation message without namespace noise, in plainer words."""
    text = _CLARK.sub("", message).strip().rstrip(".")
    text = _ELEMENT_IN_MESSAGE.sub(r"element '\1'", text)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _schema_rejection(log: Any, target: etree._Element, unit: str, raw: str, part: Part | None) -> Rejected:
    roots = (target.getroottree().getroot(), target)
    errors = []
    for e in log:
        el = resolve_path(roots, e.path)
        name = _ELEMENT_IN_MESSAGE.match(_CLARK.sub("", e.message))
        errors.append(
            {
                "line": e.line,
                "path": element_path(el) if el is not None else (e.path or "/"),
                "element": name.group(1) if name else (etree.QName(el).localname if el is not None else None),
                "message": describe(e.message),
            }
        )
    first = errors[0]
    shown = "; ".join(f"line {e['line']}, {e['path']}: {e['message']}" for e in errors[:MAX_ERRORS_IN_REASON])
    more = len(errors) - MAX_ERRORS_IN_REASON
    reason = f"fails the WCO DEC schema: {shown}" + (f" (and {more} more errors)" if more > 0 else "")
    if part is not None:  # the lines are the file's; the entry holds this declaration alone
        reason += (
            f"; declaration {part.number} of {part.of} in the file, from its line {part.line}: the "
            "quarantined text is this declaration alone"
        )
    return Rejected(
        f"{unit}#{first['path']}:line {first['line']}",
        reason,
        field=first["element"],
        raw=raw,
        details={"errors": errors[:50], "error_count": len(errors)},
    )


_POSITION = re.compile(r",? line \d+, column \d+$")
# libxml2 messages that mean the bytes do not match the declared (or default UTF-8) encoding.
_ENCODING_HINTS = ("encoding", "utf-8", "not proper", "char 0x")


def _syntax_rejection(unit: str, data: bytes, exc: etree.XMLSyntaxError) -> Rejected:
    line, column = exc.position if exc.position else (exc.lineno or 0, 0)
    message = " ".join(_POSITION.sub("", str(exc.msg or exc)).split())
    lowered = message.lower()
    at_end = line >= data.count(b"\n") + 1 and not data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if _looks_binary(data):
        what = "is binary, not XML text" + _binary_hint(data)
    elif any(hint in lowered for hint in _ENCODING_HINTS):
        what = (
            "is not in the character encoding it declares (UTF-8 unless its XML declaration says otherwise)"
        )
    elif at_end or "premature end" in lowered or "end of data" in lowered:
        what = "is truncated (it ends before its elements are closed)"
    else:
        what = "is not well-formed XML"
    return Rejected(
        f"{unit}#/:line {line}",
        f"the file {what}: {message} (line {line}, column {column})",
        raw=_decode(data, None),
        details={"line": line, "column": column},
    )


def _declares_dtd(data: bytes) -> bool:
    """Whether the prolog (before the root element, so within the first 64 KiB) has a DOCTYPE."""
    head = data[:65536]
    if b"<!DOCTYPE" in head:
        return True
    # UTF-16 text has NUL bytes among its first four; only then look for the wide markers.
    return b"\x00" in head[:4] and any(marker in head for marker in DTD_MARKERS[1:])


def _looks_binary(head: bytes) -> bool:
    """NUL bytes early on without a UTF-16/32 byte-order mark or '<' pattern: not text."""
    head = head[:1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        return False
    return b"\x00" in head


def _binary_hint(data: bytes) -> str:
    if data.startswith(b"\x1f\x8b"):
        return " (gzip-compressed: decompress it, or check it was not corrupted in transfer)"
    if data.startswith(b"PK\x03\x04"):
        return " (a zip archive: extract the XML files from it)"
    return ""


def _decode(data: bytes, encoding: str | None) -> str:
    """The unit as text for quarantine; never fails (undecodable bytes become U+FFFD)."""
    codec = encoding or "utf-8"
    if codec.lower().replace("-", "") == "utf8":
        codec = "utf-8-sig"  # drop a byte-order mark
    try:
        return data.decode(codec)
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")


def _local_name(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)
