"""Model registry: model versions (never edited in place), metrics, champion/challenger.

Tables here join ``Base.metadata`` because ``sciti.ops`` imports this module; run ``make migration``
after a change (pre-release: the single initial migration is regenerated).
"""

from __future__ import annotations

from sciti.ops.models import Base

__all__ = ["Base"]
