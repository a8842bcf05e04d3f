"""UN/EDIFACT: messages per second through the reader (tokenise + structure-validate + map).

Goal (issue 2): at least 2,000 messages per second on 2 cores. A few thousand realistic CUSCAR
(1-6 consignments, 1-4 containers each) and CUSDEC (1-5 goods items) messages are generated in
memory, in D.96B and D.16A, and read repeatedly, so the figure is the reader's own cost (no disk,
no lake). Printed in the same run, for scale:

- tokenise only (our tokenizer, no checks and no mapping: the floor of any EDIFACT reader here);
- our reader on one core, then on 2 worker processes (the goal's "2 cores");
- the ratio of our 2-process figure to the 2,000/s goal.

The machine may be shared, so each figure is given by wall clock and by CPU time spent in our
processes (what dedicated cores would do); the 2-process CPU figure is messages / the larger
worker CPU time (workers run side by side).

Usage: python bench/parse_edifact.py [--messages N] [--passes N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import types
from pathlib import Path

from harness import report_two, timed, two_processes

from sciti.acquire.formats.edifact import Separators, load_directory, read, tokenize
from sciti.acquire.formats.edifact.syntax import gc_paused
from sciti.acquire.items import Parsed
from sciti.model.identifiers import iso6346_check_digit
from sciti.settings import Settings

GOAL_PER_SECOND = 2_000
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCITI_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
HS = ["851713", "847130", "940360", "611020", "030617", "850760", "871200", "640299", "852872", "870323"]
PORTS = ["CNSHA", "CNNGB", "SGSIN", "KRPUS", "JPTYO", "USLAX", "NLRTM", "HKHKG", "VNSGN", "MYPKG"]
OWNERS = ["MSCU", "MAEU", "CMAU", "HLXU", "OOLU", "TGHU", "CSQU", "EGHU"]

_ctx: types.SimpleNamespace | None = None
_files: list[bytes] = []


def container(rng: random.Random) -> str:
    prefix = rng.choice(OWNERS) + f"{rng.randrange(10**6):06d}"
    return prefix + str(iso6346_check_digit(prefix))


def cuscar(n: int, release: str, rng: random.Random) -> list[str]:
    ref = f"{n:06d}"
    segs = [
        f"UNH+{ref}+CUSCAR:D:{release}:UN",
        f"BGM+85+MAN{ref}+9",
        "DTM+137:202611200815:203",
        "NAD+MS+EGLV:160:ZZZ++EVERGREEN MARINE CORP",
        "TDT+20+0123E+1++EGLV:172:20:EVERGREEN MARINE+++9811000:146:11:EVER GIVEN:PA",
        f"LOC+5+{rng.choice(PORTS)}:139:6",
        "LOC+60+TWKHH:139:6",
        "DTM+132:202611201400:203",
    ]
    consignments = [[container(rng) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 6))]
    for boxes in consignments:
        for box in boxes:
            segs += [
                f"EQD+CN+{box}+45G1:102:5+2++5",
                "MEA+AAE+T+KGM:3800",
                f"SEL+SL{rng.randrange(10**6):06d}+CA",
            ]
    for k, boxes in enumerate(consignments, 1):
        doc = f"BL{ref}{k:02d}"
        segs += [
            f"CNI+{k}+{doc}",
            f"RFF+BM:{doc}",
            f"LOC+9+{rng.choice(PORTS)}:139:6",
            "LOC+11+TWKHH:139:6",
            "NAD+CZ+++SHANGHAI BRIGHT ELECTRONICS CO LTD+88 HUAIHAI ROAD+SHANGHAI++200021+CN",
            "NAD+CN+12345678:160:ZZZ++TAIPEI DIGITAL TRADING CO+100 ZHONGSHAN N ROAD+TAIPEI++104+TW",
        ]
        for g, box in enumerate(boxes, 1):
            segs += [
                f"GID+{g}+{rng.randint(1, 900)}:CT",
                "FTX+AAA+++GENERAL CARGO IN CARTONS",
                f"MEA+AAE+{'G' if release == '96B' else 'AAB'}+KGM:{rng.randint(100, 20000)}",
                f"SGP+{box}+{rng.randint(1, 900)}",
                f"CST++{rng.choice(HS)}",
            ]
    segs.append(f"UNT+{len(segs) + 1}+{ref}")
    return segs


def cusdec(n: int, release: str, rng: random.Random) -> list[str]:
    ref = f"D{n:06d}"
    segs = [
        f"UNH+{ref}+CUSDEC:D:{release}:UN",
        f"BGM+929+TW26KH{n:07d}+9",
        "CST++IM+A",
        "LOC+22+TWKHH1",
        f"LOC+9+{rng.choice(PORTS)}",
        "DTM+137:20261120:102",
        "MEA+AAE+G+KGM:9600",
        f"EQD+CN+{container(rng)}",
        "RFF+ABO:EGLV0123E",
        "PAC+1200++CT",
        "TDT+11+0123E+1+++++9811000:146:11:EVER GIVEN:PA",
        f"DOC+705+BL{n:08d}",
        "NAD+IM+12345678::ZZZ++TAIPEI DIGITAL TRADING CO+100 ZHONGSHAN N ROAD+TAIPEI++104+TW",
        "NAD+DT+87654321::ZZZ++FORMOSA CUSTOMS BROKERS",
        "TOD+++CIF",
        "MOA+39:250000:USD",
        "CUX+2:USD:4+3:TWD:6+32.15",
        "UNS+D",
    ]
    items = rng.randint(1, 5)
    for k in range(1, items + 1):
        segs += [
            f"CST+{k}+{rng.choice(HS)}:122+4000",
            "FTX+AAA+++GOODS AS INVOICED",
            "LOC+27+CN",
            f"MEA+AAE+{'G' if release == '96B' else 'AAB'}+KGM:{rng.randint(10, 5000)}",
            f"PAC+{rng.randint(1, 500)}++CT",
            f"MOA+146:{rng.randint(100, 90000)}:USD",
            "TAX+7+VAT+++:::5",
            f"MOA+161:{rng.randint(10, 9000)}:TWD",
        ]
    segs += ["UNS+S", f"CNT+5:{items}"]
    segs.append(f"UNT+{len(segs) + 1}+{ref}")
    return segs


def interchanges(messages: int, per_file: int = 100) -> list[bytes]:
    """Files of ``per_file`` messages each: CUSCAR and CUSDEC, D.96B and D.16A, mixed."""
    rng = random.Random(2026)
    files = []
    for start in range(0, messages, per_file):
        body: list[str] = []
        count = min(per_file, messages - start)
        for n in range(start, start + count):
            release = "96B" if n % 2 else "16A"
            body += (cuscar if n % 4 < 2 else cusdec)(n, release, rng)
        icr = f"{start:09d}"
        head = [f"UNB+UNOC:3+SENDER:ZZ+TWCUSTOMS:ZZ+261120:0815+{icr}"]
        text = "UNA:+.? '" + "'\n".join(head + body + [f"UNZ+{count}+{icr}"]) + "'\n"
        files.append(text.encode("latin-1"))
    return files


def make_ctx() -> types.SimpleNamespace:
    return types.SimpleNamespace(settings=Settings(edifact_dir=SHARED / "edifact"))


def run_passes(files: list[bytes], ctx: types.SimpleNamespace, passes: int) -> int:
    count = 0
    for _ in range(passes):
        for data in files:
            for result in read(data, unit="bench.edi", options={}, ctx=ctx):
                if not isinstance(result, Parsed):
                    raise SystemExit(f"unexpected rejection: {result.locator}: {result.reason}")
                count += 1
    return count


def tokenise_only(files: list[bytes], passes: int) -> int:
    seps = Separators(repetition="")
    count = 0
    with gc_paused():  # as the reader does
        for _ in range(passes):
            for data in files:
                count += sum(s.tag == "UNH" for s in tokenize(data.decode("latin-1"), seps, start=9).segments)
    return count


def _init_worker(files: list[bytes]) -> None:
    global _ctx, _files
    _ctx, _files = make_ctx(), files
    for version in ("96B", "16A"):  # load the directories before the clock matters
        d = load_directory(_ctx.settings.edifact_dir, version)
        d.message("CUSCAR"), d.message("CUSDEC")


def _worker(passes: int) -> tuple[int, float]:
    assert _ctx is not None
    start = time.process_time()
    n = run_passes(_files, _ctx, passes)
    return n, time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=4_000, help="messages generated (default 4,000)")
    ap.add_argument("--passes", type=int, default=3, help="passes over them (default 3)")
    ap.add_argument(
        "--quick", action="store_true", help="400 messages, 1 pass: a smoke run, not a measurement"
    )
    args = ap.parse_args()
    messages, passes = (400, 1) if args.quick else (args.messages, args.passes)

    ctx = make_ctx()
    start = time.perf_counter()
    _init_worker([])
    load_s = time.perf_counter() - start
    files = interchanges(messages)
    size = sum(map(len, files))
    print(
        f"messages: {messages:,} (CUSCAR and CUSDEC, D.96B and D.16A) in {len(files)} interchanges, "
        f"{size / messages / 1024:.1f} KiB each on average; {passes} passes; "
        f"directories loaded in {load_s * 1000:.0f} ms (once per process)"
    )

    n, wall, cpu = timed(tokenise_only, files, passes)
    floor = n / cpu
    print(f"anchor  tokenise only, 1 core          : {n / wall:9,.0f} /s wall  {floor:9,.0f} /s CPU")

    n, wall, cpu = timed(run_passes, files, ctx, passes)
    one = n / cpu
    print(
        f"ours    tokenise+validate+map, 1 core  : {n / wall:9,.0f} /s wall  {one:9,.0f} /s CPU"
        f"  ({one / floor:.2f}x tokenise-only)"
    )

    wall_rate, cpu_rate = two_processes(_init_worker, (files,), _worker, passes)
    report_two("tokenise+validate+map", "messages", GOAL_PER_SECOND, wall_rate, cpu_rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
