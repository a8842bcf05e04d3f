"""Front-end libraries, installed from the npm registry at setup and served by SCITI itself.

``package.json`` / ``package-lock.json`` pin the libraries; ``npm ci`` puts them in
``node_modules``. :func:`sync` copies the few built files the pages use into ``static/vendor``
(a folder of this package, so an installed SCITI serves them without node_modules). Nothing is
ever fetched from a CDN: customs networks are closed.

    python -m sciti.web.assets [NODE_MODULES]    # copy; exits 1 and names what is missing
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sciti.web.errors import AssetsMissing

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
# served name -> path inside node_modules
FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "echarts.min.js": "echarts/dist/echarts.min.js",
}


def missing() -> list[str]:
    """Vendor files the pages need that are not installed."""
    return [name for name in FILES if not (VENDOR / name).is_file()]


def sync(node_modules: Path) -> list[str]:
    """Copy the built files from ``node_modules``; returns the names copied."""
    absent = [src for src in FILES.values() if not (node_modules / src).is_file()]
    if absent:
        raise AssetsMissing(f"front-end files not found in {node_modules}: {', '.join(absent)}")
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, src in FILES.items():
        shutil.copyfile(node_modules / src, VENDOR / name)
    return list(FILES)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    node_modules = Path(args[0]) if args else Path("node_modules")
    try:
        names = sync(node_modules)
    except AssetsMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"copied {', '.join(names)} to {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
