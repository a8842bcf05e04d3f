"""Text from outside on its way into the operational database (decision 0085).

PostgreSQL text columns cannot hold a NUL character (0x00); SQLite can. Received text reaches
the database in quarantine entries (locator, field, reason, raw), batch units and errors, and
staged messages. So that one bad byte never fails a batch, every such string goes through
``db_text``: a NUL becomes ``␀`` (U+2400 SYMBOL FOR NULL), one visible character, on both
backends. Nothing is lost: the bytes as received stay in the object store (a staged payload
with a NUL is kept as base64 instead, so it is exact).
"""

from __future__ import annotations

NUL = "\x00"
NUL_SHOWN = "\u2400"  # ␀


def db_text(value: str | None) -> str | None:
    """``value`` storable in any text column: each NUL shown as ␀."""
    if value is None or NUL not in value:
        return value
    return value.replace(NUL, NUL_SHOWN)


def nul_note(text: str | None) -> str:
    """A sentence for a quarantine reason when ``text`` holds a NUL, else ``""``."""
    if not text or NUL not in text:
        return ""
    line, column = _position(text, text.index(NUL))
    count = text.count(NUL)
    many = f" ({count} in all)" if count > 1 else ""
    return (
        f"the record holds a NUL byte (0x00){many}, first at line {line}, character {column} of "
        f"its text, shown here as {NUL_SHOWN}; remove it at the source"
    )


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and character of ``index`` in ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
