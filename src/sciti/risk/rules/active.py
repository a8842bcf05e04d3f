"""The rules in effect for a record kind at a moment: approved, enabled, within their validity period.

Compiling a rule takes a parse and two code generations, so compiled versions are cached by their
content (a version never changes). Which versions are in effect is cached per database and kind,
keyed by the kind's rules generation: a change anywhere raises it, the next call sees it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sciti.risk.features.national import DEFAULT, National
from sciti.risk.rules.compiled import CompiledRule, compile_rule
from sciti.risk.rules.definition import parse_rule
from sciti.risk.rules.errors import RuleSyntaxError
from sciti.risk.rules.store import effective_versions, rules_generation

log = logging.getLogger("sciti.risk.rules")
_lock = threading.Lock()
_compiled: dict[tuple[str, int, National], CompiledRule] = {}  # (sha256, version, national) -> compiled rule
# (db, kind, national) -> (generation, rules)
_in_effect: dict[tuple[str, str, National], tuple[int, list[CompiledRule]]] = {}


def _db_key(session: Session) -> str:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=True)


def _compile(text: str, sha: str, version: int, national: National) -> CompiledRule:
    key = (sha, version, national)
    found = _compiled.get(key)
    if found is None:
        found = compile_rule(parse_rule(text), version, national)
        with _lock:
            _compiled[key] = found
    return found


def rules_in_effect(session: Session, kind: str, national: National = DEFAULT) -> list[CompiledRule]:
    """Every approved, enabled rule version of ``kind`` (whatever its validity period), its reason
    saying ``national``'s currency and cash threshold (the settings')."""
    key = (_db_key(session), kind, national)
    generation = rules_generation(session, kind)
    cached = _in_effect.get(key)
    if cached is not None and cached[0] == generation:
        return cached[1]
    rules = []
    for row in effective_versions(session, kind):
        if not row.enabled:
            continue
        try:
            rules.append(_compile(row.text, row.text_sha256, row.version, national))
        except RuleSyntaxError as exc:
            # A name the rule uses was removed from the features since approval: the other rules
            # keep running; this one is reported until someone writes a new version.
            log.error("rule %s version %s no longer compiles; skipped: %s", row.rule_id, row.version, exc)
    with _lock:
        _in_effect[key] = (generation, rules)
    return rules


def active_rules(
    session: Session, kind: str, at: datetime | None = None, national: National = DEFAULT
) -> list[CompiledRule]:
    """The rules to apply to ``kind`` records at ``at`` (now by default): approved, enabled, valid then."""
    moment = at or datetime.now(UTC)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return [rule for rule in rules_in_effect(session, kind, national) if rule.active_at(moment)]


def clear_cache() -> None:
    with _lock:
        _compiled.clear()
        _in_effect.clear()


__all__ = ["active_rules", "clear_cache", "rules_in_effect"]
