"""Model registry endpoints (src/sciti/api/routers/models.py)."""

from __future__ import annotations

from tests.api.allowed.groups import holders

ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/models"): holders("models.read"),
    ("GET", "/api/v1/models/{version}"): holders("models.read"),
    ("POST", "/api/v1/models/train"): holders("models.train"),
    ("POST", "/api/v1/models/{version}/promote"): holders("models.promote"),
}
