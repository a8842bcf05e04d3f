"""Red-lane places for a scoring run: which red decisions get a physical inspection at their office
that day, highest score first, given the places real-time answers and earlier runs took."""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sciti.ops.risk_tables import RiskCapacityUse
from sciti.risk.engine.reasons import english, red_capacity, said_text
from sciti.risk.engine.store import NO_OFFICE
from sciti.risk.lanes import LanePolicy, ration_red


class RedPlaces:
    """Red-lane capacity for one run, kept part by part (``scoring.keep``).

    ``fits`` rations the rows from a part's first row to the end of the run, so a part takes only
    places that no higher-scored red decision later in the run needs: handing the places out part
    by part gives what handing them out for the whole run at once would (the ranking is stable).
    The red decisions that find no place go to the next-best lane, said why."""

    def __init__(self, policy: LanePolicy, table: pa.Table):
        self.policy = policy
        self.table = table
        lanes = table["lane"].to_numpy(zero_copy_only=False).astype(object)
        self.lanes = lanes
        self.candidates = np.where(table["sampled"].to_numpy(zero_copy_only=False), "sampled", lanes)
        limited = policy.limits_red  # if not, every red decision keeps its place, none counted
        self.offices: list[str | None] = table["office_code"].to_pylist() if limited else []
        days = pc.strftime(table["assessed_at"], "%Y-%m-%d") if limited else pa.array([], pa.string())
        self.days: list[str] = days.to_pylist()
        self.scores = table["score"].to_numpy(zero_copy_only=False).astype(np.float64)

    def fits(self, session: Session, rows: slice, *, lock: bool) -> np.ndarray:
        """Per row of ``rows``, whether it keeps its lane, given the places taken so far and the
        red decisions from ``rows.start`` to the end of the run (locked on PostgreSQL with
        ``lock``, until the transaction ends)."""
        start, stop = rows.start, rows.stop
        if not self.policy.limits_red or stop <= start:
            return np.ones(stop - start, dtype=bool)
        wanted = sorted({date.fromisoformat(d) for d in self.days[start:]})
        q = select(RiskCapacityUse).where(RiskCapacityUse.day.in_(wanted))
        found = session.scalars(q.with_for_update() if lock else q)
        used = {(_office(r.office_code), r.day.isoformat()): r.used for r in found}
        rest = ration_red(
            self.policy,
            self.offices[start:],
            self.days[start:],
            self.scores[start:],
            self.candidates[start:],
            used,
        )
        return rest[: stop - start]

    def apply(self, fits: np.ndarray, rows: slice) -> tuple[pa.Table, int]:
        """The part ``rows`` with the red decisions that found no place moved down; how many moved."""
        start, stop = rows.start, rows.stop
        table = self.table.slice(start, stop - start)
        over = np.flatnonzero(~fits)
        if over.size == 0:
            return table, 0
        kinds = table["kind"].to_pylist()
        lane_col = self.lanes[start:stop].tolist()
        reasons = table["reasons"].to_pylist()
        # The line's code beside it, as real time's (store.apply_capacity); a table without codes
        # (made before they were kept) stays without.
        with_codes = "reason_codes" in table.column_names
        codes = table["reason_codes"].to_pylist() if with_codes else []
        for i in over.tolist():
            o = self.policy.for_kind(kinds[i]).over_capacity
            office, day = self.offices[start + i], self.days[start + i]
            said = red_capacity(office, day, self.policy.capacity(office), o)
            lane_col[i] = o
            if with_codes and codes[i] is not None and len(codes[i]) == len(reasons[i]):
                codes[i] = [*codes[i], said_text(said)]
            reasons[i] = [*reasons[i], english(said)]
        lane_at, reasons_at = table.schema.get_field_index("lane"), table.schema.get_field_index("reasons")
        table = table.set_column(lane_at, "lane", pa.array(lane_col, pa.string()))
        table = table.set_column(reasons_at, "reasons", pa.array(reasons, pa.list_(pa.string())))
        if with_codes:
            at = table.schema.get_field_index("reason_codes")
            table = table.set_column(at, "reason_codes", pa.array(codes, pa.list_(pa.string())))
        return table, int(over.size)

    def take(self, session: Session, fits: np.ndarray, rows: slice) -> None:
        """Count the places the part ``rows`` was granted, added to the stored counts (a real-time
        answer may take one too)."""
        if not self.policy.limits_red:
            return
        start, stop = rows.start, rows.stop
        granted = np.where(fits, self.candidates[start:stop], "released")
        taken = Counter(
            (o or NO_OFFICE, d)
            for o, d, lane in zip(self.offices[start:stop], self.days[start:stop], granted, strict=True)
            if lane == "red" and self.policy.capacity(o) is not None
        )
        for (office, day), n in taken.items():
            key = (office, date.fromisoformat(day))
            done = session.execute(
                update(RiskCapacityUse)
                .where(RiskCapacityUse.office_code == key[0], RiskCapacityUse.day == key[1])
                .values(used=RiskCapacityUse.used + n)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                # a counter another writer creates meanwhile fails this insert: the part is tried again
                session.execute(insert(RiskCapacityUse).values(office_code=key[0], day=key[1], used=n))


def _office(key: str) -> str | None:
    return None if key == NO_OFFICE else key


__all__ = ["RedPlaces"]
