"""Which files a connector takes from a folder, and what is inside archives.

A received unit may be a plain file, a gzip file (one member) or a zip archive (several members).
A bundle of re-submitted quarantine entries (decision 0120) is a zip whose every member is read,
whatever its name: each is the text of one entry, named after its original unit. Archive problems
(truncated gzip, corrupt zip, a member failing its CRC) become ``Rejected`` for that unit or
member: the rest is still read.
"""

from __future__ import annotations

import fnmatch
import gzip
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from sciti.acquire.items import Rejected

ARCHIVE_SUFFIXES = (".gz", ".zip")
# The transport of a batch that is a bundle of re-submitted quarantine entries (decision 0120).
BUNDLE = "resubmit-bundle"


def matches(name: str, pattern: str) -> bool:
    """Case-insensitive glob match; ``x.csv.gz`` matches ``*.csv`` and any ``.zip`` is taken."""
    name, pattern = name.lower(), pattern.lower()
    if name.endswith(".zip"):
        return True
    if name.endswith(".gz"):
        name = name[:-3]
    return fnmatch.fnmatchcase(name, pattern)


def files_in(folder: Path, pattern: str) -> list[Path]:
    """Matching files under ``folder`` (recursively, hidden files skipped), in a stable order."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if (
            path.is_file()
            and not any(part.startswith(".") for part in rel.parts)
            and matches(path.name, pattern)
        ):
            found.append(path)
    return sorted(found)


def expand(
    obj: Path, unit: str, pattern: str, work: Path, *, every_member: bool = False
) -> Iterator[tuple[Path, str] | Rejected]:
    """The readable parts of a received unit: (local path, part name) or a Rejected part.
    ``every_member``: a bundle, whose zip members are all read as they are (decision 0120)."""
    lower = unit.lower()
    if lower.endswith(".zip"):
        yield from _zip_members(obj, unit, None if every_member else pattern, work)
    elif lower.endswith(".gz"):
        target = work / PurePosixPath(unit).name[:-3]
        try:
            with gzip.open(obj, "rb") as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 22)
        except (EOFError, OSError, zlib.error) as exc:
            yield Rejected(
                locator=unit, reason=f"{unit} is not a complete gzip file ({exc}); nothing in it was stored"
            )
            return
        yield target, unit
    else:
        yield obj, unit


def _zip_members(
    obj: Path, unit: str, pattern: str | None, work: Path
) -> Iterator[tuple[Path, str] | Rejected]:
    try:
        archive = zipfile.ZipFile(obj)
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        yield Rejected(
            locator=unit, reason=f"{unit} is not a readable zip archive ({exc}); nothing in it was stored"
        )
        return
    with archive:
        for n, info in enumerate(members):
            name = info.filename
            if pattern is not None and (
                not matches(PurePosixPath(name).name, pattern) or name.lower().endswith(ARCHIVE_SUFFIXES)
            ):
                continue
            part = f"{unit}!{name}"
            target = work / f"member-{n}-{PurePosixPath(name).name}"
            try:
                with archive.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 22)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
                yield Rejected(locator=part, reason=f"zip member {name} cannot be extracted ({exc})")
                continue
            yield target, part
