"""Sending limits: a global rate, per-recipient-domain and per-sender rates and a daily cap (warm-up),
for all workers together. Off unless campaigns.yaml configures `limits:`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dripper.campaign.model import Limits
from dripper.states import Reason
from dripper.store import Store
from dripper.store.queries import counters


@dataclass(frozen=True)
class Held:
    """A touch that may not go out yet, why, and when the blocking window ends."""

    reason: str
    until: datetime
    everything_blocked: bool  # a limit on all mail, not just this domain, is used up


def _unit(seconds: int) -> str:
    return {1: "s", 60: "min", 3600: "h", 86400: "day"}.get(seconds, f"{seconds}s")


class Limiter:
    def __init__(self, store: Store, limits: Limits):
        self.store = store
        self.limits = limits

    def admit(self, demands: Sequence[tuple[int, str, str]], now: datetime) -> dict[int, Held]:
        """Take room for e-mails (touch id, recipient domain, sender identity's key), in
        order; the ones that find no room are returned with the reason and the end of the
        window that blocks them."""
        if not self.limits.active or not demands:
            return {}
        limits: dict[counters.Key, int] = {}
        needs: list[tuple[int, list[counters.Key]]] = []
        for touch_id, domain, sender in demands:
            keys = []
            for scope, limit, seconds in self.limits.scopes_for(domain, sender):
                key = (scope, seconds, counters.window_start(now, seconds))
                limits[key] = limit
                keys.append(key)
            needs.append((touch_id, keys))
        with self.store.begin() as conn:
            admitted, used = counters.take(conn, limits, needs)
            counters.forget_before(conn, now - timedelta(days=2))
        held: dict[int, Held] = {}
        for touch_id, keys in needs:
            if touch_id in admitted:
                continue
            full = [k for k in keys if used.get(k, 0) >= limits[k]] or keys
            scope, seconds, start = min(full, key=lambda k: k[2] + timedelta(seconds=k[1]))
            held[touch_id] = Held(
                reason=Reason.RATE_LIMITED.with_detail(f"{scope} {limits[(scope, seconds, start)]}/{_unit(seconds)}"),
                until=start + timedelta(seconds=seconds),
                everything_blocked=scope == "all",
            )
        return held
