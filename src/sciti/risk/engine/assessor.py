"""The assessor: rules + champion model + lanes for one record (real time) or a table (batch).

Both paths share every decision after the numbers (:mod:`sciti.risk.engine.decide`), so for the
same record, rules and model they give the same answer. Rules are re-read when their versions
change, a kind's champion model when the registry names another one, and the feature reference
when ``sciti risk reference build`` saved a new one (all polled every ``reload_seconds``), without
a restart.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sciti.risk.engine import parts
from sciti.risk.engine.assessment import Assessment
from sciti.risk.engine.decide import RowResult, decide, factors_of, model_scores
from sciti.risk.engine.errors import AssessmentInputError, EngineError
from sciti.risk.engine.metrics import ASSESSED, MODEL_ALERT, MODEL_RELOADS, REFERENCE_RELOADS, RULES_RELOADS
from sciti.risk.engine.reasons import RULES_ONLY
from sciti.risk.engine.ruleset import RuleSet, direct_lane, rule_score
from sciti.risk.engine.said import said_row
from sciti.risk.engine.subjects import SUBJECTS, rows_of, subject_ref
from sciti.risk.lanes import LanePolicy, load_policy
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine")
RulesLoader = Callable[[str, datetime], list[Any]]
Champion = tuple[str, str]  # (version, artefact key) in the model registry
ChampionsLoader = Callable[[], dict[str, Champion]]  # per kind
ModelLoader = Callable[[str, Champion], tuple[Any | None, str | None]]  # (model, why it is missing)
ReferenceWatch = Callable[[], str | None]  # the saved reference's id (parts.reference_id), None: none


class ModelUnavailable(EngineError):
    """A kind's champion model cannot be loaded, and a batch run would score without it.

    The server then keeps serving the previous champion, or rules only when it had none; a batch
    run cannot know which, so it stops instead of giving answers real time may not give."""

    code = "model_unavailable"
    default_remedy = (
        "repair the artefact or promote another champion (see docs/risk-models.md), or score with "
        "rules only on purpose: sciti risk score --rules-only"
    )


def item_order(row: dict[str, Any]) -> tuple[bool, int]:
    """Goods items by number, lowest first (one without a number last): both paths score a
    declaration's items in this order, so equal scores name the same item everywhere."""
    number = row.get("item_number")
    return (number is None, 0 if number is None else int(number))


@dataclass
class KindParts:
    rules: RuleSet
    model: Any | None
    model_error: str | None  # why the champion is missing (or not the newest) when one failed to load

    @property
    def model_version(self) -> str | None:
        return None if self.model is None else str(self.model.version)


class Assessor:
    """Scores records of every assessed kind. Thread-safe; one per process is enough."""

    def __init__(
        self,
        *,
        policy: LanePolicy,
        reference: Any,
        parts_by_kind: dict[str, KindParts],
        rules_loader: RulesLoader | None = None,
        reload_seconds: float = 5.0,
        explain_top: int = 5,
        champions_loader: ChampionsLoader | None = None,
        model_loader: ModelLoader | None = None,
        champions: dict[str, str | None] | None = None,
        failed: dict[str, str | None] | None = None,
        rules_only: bool = False,
        reference_watch: ReferenceWatch | None = None,
        reference_loader: Callable[[], Any] | None = None,
        reference_key: str | None = None,
    ):
        self.policy = policy
        self.reference = reference
        # The saved reference's id when ``reference`` was loaded: another one at a check is loaded
        # and swapped in whole (one attribute: an answer uses one reference, see ``pinned``).
        self.reference_watch = reference_watch
        self.reference_loader = reference_loader
        self._reference_key = reference_key
        self._reference_failed: str | None = None  # the id that failed to load, said once
        self.parts = parts_by_kind
        self.rules_loader = rules_loader
        self.champions_loader = champions_loader
        self.model_loader = model_loader
        # Per kind, the registry's champion version its parts were loaded from (None: there was
        # none). A kind missing here has not loaded its champion yet: it is tried at every check.
        self._champions: dict[str, str | None] = dict(champions or {})
        # Per kind, the champion version that failed to load (None: the registry could not name
        # it); gone once a champion loads. Batch refuses to score such a kind without its model.
        self.failed: dict[str, str | None] = dict(failed or {})
        # Rules only on purpose (``sciti risk score --rules-only``): no model is loaded or used.
        self.rules_only = rules_only
        self.reload_seconds = reload_seconds
        self.explain_top = explain_top
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        settings: Settings,
        kinds: tuple[str, ...] = tuple(SUBJECTS),
        *,
        rules_only: bool = False,
        **options: Any,
    ) -> Assessor:
        """Active rules and champion model per kind, the lane policy and the feature reference.

        ``rules_only``: load no model at all, and say so in every answer (a batch run asked for it)."""
        loader: RulesLoader = lambda kind, at: parts.active_rules(settings, kind, at)  # noqa: E731
        model_loader: ModelLoader = lambda kind, champion: parts.load_model(settings, kind, champion)  # noqa: E731
        now = datetime.now(UTC)
        champions = parts.champions(settings, migrate_first=True)  # None: no model registry installed
        # Read before the reference itself: a build finishing in between is loaded at the first check.
        watch = parts.ReferenceWatch(settings)
        reference_options: dict[str, Any] = {
            "reference_watch": watch.current,
            "reference_loader": lambda: parts.load_reference(settings),
            "reference_key": watch.current(),
        }
        if rules_only:  # no model loaded, none picked up later
            by_kind = {kind: KindParts(RuleSet(kind, loader(kind, now)), None, RULES_ONLY) for kind in kinds}
            return cls(
                policy=load_policy(settings.home),
                reference=parts.load_reference(settings),
                parts_by_kind=by_kind,
                rules_loader=loader,
                rules_only=True,
                **reference_options,
                **options,
            )
        by_kind, loaded, failed = {}, {}, {}
        for kind in kinds:
            champion = None if champions is None else champions.get(kind)
            if champions is None:
                model, error = parts.load_model(settings, kind)  # says what is missing
            else:
                model, error = (None, None) if champion is None else model_loader(kind, champion)
            if error is None:
                loaded[kind] = None if champion is None else champion[0]
            else:
                failed[kind] = None if champion is None else champion[0]
                log.error("champion model for %s failed to load: %s", kind, error)
            MODEL_ALERT.labels(kind=kind).set(1 if error else 0)
            by_kind[kind] = KindParts(RuleSet(kind, loader(kind, now)), model, error)
        return cls(
            policy=load_policy(settings.home),
            reference=parts.load_reference(settings),
            parts_by_kind=by_kind,
            rules_loader=loader,
            champions_loader=None if champions is None else lambda: parts.champions(settings) or {},
            model_loader=model_loader,
            champions=loaded,
            failed=failed,
            **reference_options,
            **options,
        )

    # -- versions --------------------------------------------------------------------------------
    @property
    def rules_version(self) -> str:
        return ";".join(f"{k}:{p.rules.stamp}" for k, p in sorted(self.parts.items()))

    @property
    def reference_snapshot(self) -> str | None:
        snap = getattr(self.reference, "snapshot_id", None)
        return None if snap is None else str(snap)

    def kind_parts(self, kind: str) -> KindParts:
        try:
            return self.parts[kind]
        except KeyError:
            raise AssessmentInputError(
                f"record kind {kind!r} is not assessed here", remedy=f"use one of: {', '.join(self.parts)}"
            ) from None

    def require_models(self, kinds: tuple[str, ...] | None = None) -> None:
        """Raise ``ModelUnavailable`` for the first kind left without a model because its champion
        failed to load (the server's fallback, which batch must not take quietly: see decision 0093).

        A kind still served by its previous champion (a newer one failed) has its model, as on the
        server; a kind without a champion, or a run with ``rules_only``, is rules only on purpose."""
        if self.rules_only:
            return
        for kind in kinds or tuple(self.parts):
            p = self.kind_parts(kind)
            if p.model is not None or p.model_error is None:
                continue
            version = self.failed.get(kind)
            name = f"champion model {version} of {kind}" if version else f"champion model of {kind}"
            why = (p.model_error.splitlines() or [""])[0]  # one line: a loader's error can run on
            raise ModelUnavailable(
                f"{name} cannot be loaded, so batch scores would differ from real time: {why}",
                details={"kind": kind, "model_version": version, "why": p.model_error},
            )

    @property
    def refresh_due(self) -> bool:
        """True when the next ``refresh_rules`` would read the database."""
        return self.rules_loader is not None and time.monotonic() - self._checked >= self.reload_seconds

    def refresh_rules(self, *, force: bool = False) -> bool:
        """Re-read the active rules, the champion versions and the saved reference's id if
        ``reload_seconds`` passed (or ``force``), loading a newly promoted champion or a newly built
        reference; True when any rules, model or the reference changed."""
        if self.rules_loader is None:
            return False
        now = time.monotonic()
        if not force and now - self._checked < self.reload_seconds:
            return False
        with self._lock:
            if not force and now - self._checked < self.reload_seconds:
                return False
            self._checked = now
            changed = False
            at = datetime.now(UTC)
            for kind, p in self.parts.items():
                fresh = RuleSet(kind, self.rules_loader(kind, at))
                if fresh.stamp != p.rules.stamp:
                    self.parts[kind] = KindParts(fresh, p.model, p.model_error)
                    changed = True
            if changed:
                RULES_RELOADS.inc()
                log.info("active rules reloaded", extra={"rules_version": self.rules_version})
            changed = self._refresh_reference() or changed
            return self._refresh_models() or changed

    def _refresh_reference(self) -> bool:
        """Swap in the saved reference when it is not the one in use (lock held)."""
        if self.reference_watch is None or self.reference_loader is None:
            return False
        try:
            key = self.reference_watch()
        except Exception as exc:  # the lake unreadable for a moment: keep the reference, ask again
            log.warning("the saved risk reference could not be checked: %s", exc)
            return False
        if key is None or key == self._reference_key:
            return False
        try:
            fresh = self.reference_loader()
        except Exception as exc:  # keep serving the one in use; tried again at every check
            if key != self._reference_failed:
                log.error(
                    "risk reference %s failed to load, still serving %s: %s",
                    key,
                    self.reference_snapshot,
                    exc,
                )
                self._reference_failed = key
            return False
        if not key.startswith(f"{fresh.snapshot_id} built "):
            return False  # another build saved meanwhile: its id is read at the next check
        before = self.reference_snapshot
        self.reference = fresh  # one assignment: an answer in progress keeps its pinned reference
        self._reference_key = key
        self._reference_failed = None
        REFERENCE_RELOADS.inc()
        log.info(
            "risk reference is now %s (was %s)",
            self.reference_snapshot,
            before,
            extra={"reference_snapshot": self.reference_snapshot, "previous_reference_snapshot": before},
        )
        return True

    def _refresh_models(self) -> bool:
        """Load the champion of every kind whose champion changed in the registry (lock held)."""
        if self.champions_loader is None or self.model_loader is None:
            return False
        try:
            champions = self.champions_loader()
        except Exception as exc:  # the registry unreadable for a moment: keep the models, ask again
            log.warning("champion model versions could not be read: %s", exc)
            return False
        changed = False
        for kind in self.parts:
            champion = champions.get(kind)
            version = None if champion is None else champion[0]
            if kind in self._champions and self._champions[kind] == version:
                continue
            changed = self._swap_model(kind, champion) or changed
        return changed

    def _swap_model(self, kind: str, champion: Champion | None) -> bool:
        """Swap in ``kind``'s new champion (None: retired without a successor, rules only)."""
        assert self.model_loader is not None
        p = self.parts[kind]
        model, error = (None, None) if champion is None else self.model_loader(kind, champion)
        version = None if champion is None else champion[0]
        if error is not None:
            MODEL_ALERT.labels(kind=kind).set(1)
            self.failed[kind] = version
            if p.model is not None:  # a broken new artefact must not take down a working model
                error = f"champion {version} failed to load, still serving {p.model_version}: {error}"
            if error != p.model_error:  # said once; tried again at every check
                log.error("champion model for %s: %s", kind, error)
                self.parts[kind] = KindParts(p.rules, p.model, error)
            return False
        # Replaced whole, as for rules. Not gc.freeze()d as at start-up: a model is mostly LightGBM's
        # own memory, out of the collector's sight, and the frozen old one is freed by refcounting.
        self.parts[kind] = KindParts(p.rules, model, None)
        self._champions[kind] = version
        self.failed.pop(kind, None)
        MODEL_ALERT.labels(kind=kind).set(0)
        MODEL_RELOADS.labels(kind=kind).inc()
        log.info("champion model of %s is now %s", kind, version or "none (rules only)")
        return True

    # -- one record at a time --------------------------------------------------------------------
    def assess(self, kind: str, records: list[dict[str, Any]], *, refresh: bool = True) -> list[Assessment]:
        """Assess records as sent (a declaration with its ``items``). Nothing is stored here.

        ``refresh`` False: the caller checks rules and champions itself (the server does so on a
        worker thread, so that loading a new model never holds up the event loop)."""
        if refresh:
            self.refresh_rules()
        pinned = self.pinned(kind)
        p = pinned.kind_parts(kind)
        at = datetime.now(UTC)
        out = []
        for record in records:
            record_id, rows = rows_of(kind, record)
            rows.sort(key=item_order)  # stable: other kinds have one row
            if not rows:
                raise AssessmentInputError(
                    f"{kind} {subject_ref(kind, record)} has no goods items to assess",
                    remedy="send the declaration's goods items in `items`",
                    details={"field": "items"},
                )
            # ``said``: the values as the words read them, the same as batch's (see said.py).
            feats = [said_row(parts.compute_one(kind, row, pinned.reference)) for row in rows]
            results = []
            probs = None
            if p.model is not None:
                probs = model_scores(p.model, p.model.score(feats[0] if len(feats) == 1 else feats))
            for i, f in enumerate(feats):
                hits = p.rules.hits_one(f)
                model_score = None if probs is None else float(probs[i])
                results.append(
                    RowResult(
                        row=f,
                        rule_score=rule_score(hits),
                        model_score=model_score,
                        direct_lane=direct_lane(hits),
                        hits=hits,
                    )
                )
            # The first of equal scores, i.e. the lowest item number (rows are in item order).
            top = max(range(len(results)), key=lambda i: results[i].score)
            factors = []
            if p.model is not None:
                # The reference says which rates are assumed (no inspections) and the counts of the others.
                explained = p.model.explain(feats[top], top=self.explain_top, reference=pinned.reference)
                factors = factors_of(explained[0])
            assessment = decide(
                pinned,
                kind,
                record_id=record_id,
                ref=subject_ref(kind, record),
                results=results,
                top=top,
                factors=factors,
                assessed_at=at,
                assessment_id=new_assessment_id(),
                path="api",
            )
            ASSESSED.labels(kind=kind, lane=assessment.lane, path="api").inc()
            out.append(assessment)
        return out

    def assess_batch(
        self, kind: str, table: pa.Table, *, explain: str = "flagged", with_features: bool = False
    ) -> pa.Table:
        """Assess subject rows (declarations joined with their items) into ``risk.assessments`` rows.

        ``explain``: ``all`` explains every record; ``flagged`` (default) only those that go to an
        officer, since a model explanation costs far more than its score; ``none`` gives the score
        parts and rule reasons only (the fastest, for re-scoring history). ``with_features``: the
        table already holds the derived features (``features.compute_batch``).
        Raises ``ModelUnavailable`` when ``kind``'s champion cannot be loaded (``require_models``).
        """
        from sciti.risk.engine.batch import assess_table

        self.refresh_rules()
        pinned = self.pinned(kind)
        pinned.require_models((kind,))
        return assess_table(pinned, kind, table, explain=explain, with_features=with_features)

    def pinned(self, kind: str) -> Assessor:
        """This assessor with ``kind``'s parts fixed, for one call: a swap by another thread
        meanwhile cannot make an answer name a model or rules other than the ones that scored it."""
        view = copy.copy(self)
        view.parts = {kind: self.kind_parts(kind)}
        return view


def new_assessment_id() -> str:
    """Time-ordered (sorts by creation) and unique: 12 hex digits of milliseconds + 20 random.

    An id is not a secret, so the random part comes from ``random`` (reseeded in every forked
    process), not the operating system: ``os.urandom`` gives up the interpreter lock, and on the
    real-time path getting it back can cost more than the whole rule evaluation."""
    return f"{int(time.time() * 1000):012x}{random.getrandbits(80):020x}"


__all__ = ["RULES_ONLY", "Assessor", "KindParts", "ModelUnavailable", "item_order", "new_assessment_id"]
