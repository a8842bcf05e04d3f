"""Regenerate the initial migration from models.py (pre-release only: there are no deployments yet)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from sciti.ops.db import alembic_config

VERSIONS = Path(__file__).parent / "migrations" / "versions"


def main() -> None:
    for old in VERSIONS.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{tmp}/empty.db")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    print("wrote", *sorted(p.name for p in VERSIONS.glob("*.py")))


if __name__ == "__main__":
    main()
