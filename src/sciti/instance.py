"""The instance's own id: 12 random hex characters in ``<home>/instance.id``, made on first use.

Not a secret. It tells this instance apart from others that meet the same outside service: an
MQTT broker keeps one session per client id and disconnects the older client when a second one
connects with the same id, so two instances (production and training, say) subscribing as
``sciti-elock`` would knock each other off all day and split the messages between them.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from sciti.errors import ConfigError

FILE = "instance.id"
_ID = re.compile(r"[0-9a-f]{12}")


def instance_id(home: Path) -> str:
    """This instance's id; the first caller makes it (two at once agree: the file is made once)."""
    path = Path(home) / FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{FILE}.{os.getpid()}")
        draft.write_text(secrets.token_hex(6) + "\n")
        try:  # a link appears whole or not at all, and never replaces another process's id
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    value = path.read_text().strip()
    if not _ID.fullmatch(value):
        raise ConfigError(
            f"{path} holds {value[:40]!r}, not an instance id (12 hexadecimal characters)",
            remedy="restore the file from backup; deleting it gives the instance a new id "
            "(and its MQTT connectors new broker sessions)",
        )
    return value
