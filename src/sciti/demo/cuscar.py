"""Sea and air cargo manifests as UN/EDIFACT CUSCAR D.96B interchanges.

One interchange (UNB..UNZ) per chunk, one message (UNH..UNT) per vessel call or flight and day,
one consignment (CNI) per bill of lading / air waybill. Segment order follows the D.96B CUSCAR
segment table: UNH BGM DTM NAD(SG2) TDT LOC DTM(SG4) EQD MEA(SG5) CNT, then per consignment
CNI RFF LOC NAD(SG11) GID FTX MEA SGP CST(SG14), UNT. Character set UNOC (Latin-1).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import numpy as np
import pyarrow as pa

from sciti.demo.catalogue import PartyForms
from sciti.demo.declarations import DeclChunk
from sciti.demo.entities import World
from sciti.demo.writers import Sinks

UNA = "UNA:+.? '"


_RELEASE = str.maketrans({ch: "?" + ch for ch in "?+:'"})


def esc(text: object) -> str:
    """Release the EDIFACT separators, and keep to Latin-1 (UNOC)."""
    s = str(text)
    if not s.isascii():
        s = s.encode("latin-1", "replace").decode("latin-1")
    return s.translate(_RELEASE)


def _wrap(text: str, size: int) -> list[str]:
    """Greedy word wrap at spaces (a reader joins components with a space); long words are cut.

    A few times faster than textwrap, which matters: every party and goods line goes through it.
    """
    out: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > size:
            if line:
                out.append(line)
                line = ""
            out.append(word[:size])
            word = word[size:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= size:
            line = f"{line} {word}"
        else:
            out.append(line)
            line = word
    if line:
        out.append(line)
    return out


def _parts(text: str, size: int, most: int) -> str:
    """Split text over repeated components at word boundaries (e.g. 5 x an..35 for a name)."""
    if len(text) <= size:
        return esc(text)
    return ":".join(esc(c) for c in _wrap(text, size)[:most])


def _nad(qual: str, name: str, street: str, city: str, country: str) -> str:
    return f"NAD+{qual}+++{_parts(name, 35, 5)}+{_parts(street, 35, 4)}+{esc(city[:35])}+++{country}"


def write_cuscar(world: World, chunk: DeclChunk, forms: PartyForms, sinks: Sinks) -> None:
    """Append the chunk's inbound sea and air consignments as one CUSCAR interchange file."""
    h, it = chunk.h, chunk.it
    inbound = np.flatnonzero((h["declaration_type"] == "IM") & (h["mode"] != "road"))
    if not len(inbound):
        return
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for k in inbound.tolist():
        groups[(str(h["transport_means_id"][k]), int(h["day"][k]))].append(int(k))
    starts = np.concatenate([[0], np.cumsum(h["goods_item_count"])])
    official = {r: forms.start[h[r]] for r in ("importer", "exporter")}

    def col(arr: pa.Array, idx: np.ndarray) -> np.ndarray:
        return np.asarray(arr.take(pa.array(idx)).to_numpy(zero_copy_only=False))

    # A party's NAD body is the same every time it appears: build it once per company form.
    cache = forms.nad_cache
    for role in official:
        todo = np.unique(official[role][inbound])
        todo = todo[np.array([int(t) not in cache for t in todo], dtype=bool)]
        if len(todo):
            for t, name, street, city, country in zip(
                todo.tolist(),
                col(forms.name, todo),
                col(forms.street, todo),
                col(forms.city, todo),
                col(forms.country, todo),
                strict=True,
            ):
                cache[t] = _nad("", str(name), str(street), str(city), str(country))[4:]
    vessel_name = {v["imo"]: v["name"] for v in world.vessels}
    # Python lists: indexing them per segment is much cheaper than indexing numpy arrays.
    packages, ptype = it["packages"].tolist(), it["package_type"].tolist()
    gross, hs = it["gross_mass_kg"].tolist(), it["hs_code"].tolist()
    # Goods descriptions repeat (a catalogue, brands, cover stories): wrap each text once.
    ftx = forms.ftx_cache
    desc = [str(d) for d in it["description"].tolist()]
    tranship = (it["pattern"] == "transhipment").tolist()
    conts = h["containers"].tolist()
    docs = h["transport_document"].tolist()
    exporter, importer = official["exporter"].tolist(), official["importer"].tolist()
    first_issue = h["issue"][inbound[0]].astype(datetime)
    stamp = first_issue.strftime("%y%m%d:%H%M")
    ref = f"CS{chunk.index + 1:08d}"
    lines = [UNA, f"UNB+UNOC:3+SCITICARRIERS:ZZZ+HKCUSTOMS:ZZZ+{stamp}+{ref}'"]
    for msg_no, ((means, _day), members) in enumerate(sorted(groups.items()), 1):
        k0 = members[0]
        mode = str(h["mode"][k0])
        issued = h["issue"][k0].astype(datetime)
        seg = [
            f"UNH+{msg_no}+CUSCAR:D:96B:UN",
            f"BGM+85+MF{chunk.index + 1:05d}{msg_no:05d}+9",
            f"DTM+137:{issued.strftime('%Y%m%d%H%M')}:203",
            "NAD+CA+SCITICARRIERS::ZZZ",
        ]
        if mode == "sea":
            seg.append(
                f"TDT+20+V{_day:03d}+1++SCITICARRIERS:172:ZZZ+++{esc(means[3:])}:146:11:"
                f"{esc(vessel_name.get(means, ''))}"
            )
        else:
            seg.append(f"TDT+20+{esc(means)}+4++{esc(means[:2])}:172:ZZZ+++{esc(means)}::::HK")
        seg += [
            f"LOC+9+{h['loading_location'][k0]}",
            "LOC+11+HKHKG",
            # The customs office the report is lodged with (UN/EDIFACT 3227 code 22, customs office
            # of clearance), the office its consignments are handled at: the one the call's
            # declarations are lodged with (KTCT by sea, HKIA by air), in the administration's codes.
            f"LOC+22+{h['office_code'][k0]}",
            f"DTM+132:{issued.strftime('%Y%m%d')}:102",
        ]
        containers = sorted({c for k in members for c in conts[k].split(",") if c})
        for c in containers:
            seg += [f"EQD+CN+{c}+22G1:102:5", f"MEA+AAE+G+KGM:{2200 + (int(c[4:10]) % 2000):.0f}"]
        seg.append(f"CNT+11:{int(sum(h['total_packages'][k] for k in members))}")
        rfq = "BM" if mode == "sea" else "AWB"
        for seq, k in enumerate(members, 1):
            doc = esc(docs[k])
            seg += [f"CNI+{seq}+{doc}", f"RFF+{rfq}:{doc}"]
            rows = range(int(starts[k]), int(starts[k + 1]))
            # The bill shows where the carrier received the goods: for laundered origin that is a
            # Mainland port even when the declaration names a third economy.
            if any(tranship[r] for r in rows):
                seg.append("LOC+88+CNSHK")
            seg.append(f"NAD+CZ{cache[exporter[k]]}")
            seg.append(f"NAD+CN{cache[importer[k]]}")
            cont = conts[k].split(",")[0]
            for j, r in enumerate(rows, 1):
                seg += [
                    f"GID+{j}+{packages[r]}:{ptype[r]}",
                    ftx.get(desc[r]) or ftx.setdefault(desc[r], f"FTX+AAA+++{_parts(desc[r], 70, 5)}"),
                    f"MEA+AAE+G+KGM:{gross[r]:.3f}",
                ]
                if cont:
                    seg.append(f"SGP+{cont}+{packages[r]}")
                seg.append(f"CST++{hs[r]}")
        seg.append(f"UNT+{len(seg) + 1}+{msg_no}")
        lines += [s + "'" for s in seg]
    lines.append(f"UNZ+{len(groups)}+{ref}'")
    path = sinks.root / "manifests" / "cuscar" / f"CUSCAR_{chunk.index + 1:05d}.edi"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    sinks.count("manifests.cuscar_messages", len(groups))
    sinks.count("manifests.consignments", len(inbound))
