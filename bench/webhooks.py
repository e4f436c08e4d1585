"""What webhooks cost a tick: the same tick over N due leads (file outbox, SQLite)
without a subscription, and with one listening to `touch.sent` (one outbox row per sent
touch, written in the tick's commits). Only the tick is timed, in-process.

    python -m bench.webhooks [N]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench._common import T0, count_argument
from bench.send_throughput import prepare_dripper


def timed_tick(work: Path, n: int, subscribe: bool) -> tuple[float, int, int]:
    """Seconds for the tick, touches sent, outbox rows written."""
    from sqlalchemy import func, select

    from dripper import config as config_mod
    from dripper.clock import FrozenClock
    from dripper.sending.tick import Sender
    from dripper.settings import from_env
    from dripper.store import open_store
    from dripper.store.tables import webhook_outbox
    from dripper.webhooks import subscriptions

    work.mkdir()
    env = prepare_dripper(work, n, f"sqlite:///{work / 'd.db'}")
    settings = from_env({**env, "DRIPPER_OUTBOX": str(work / "outbox")})
    store = open_store(settings.database_url)
    try:
        if subscribe:
            with store.begin() as conn:
                subscriptions.add(conn, "http://127.0.0.1:9/hook", "touch.sent", T0)
        sender = Sender(store, config_mod.load(settings), settings, FrozenClock(T0 + timedelta(days=1)))
        start = time.perf_counter()
        summary = asyncio.run(sender.tick())
        elapsed = time.perf_counter() - start
        with store.begin() as conn:
            rows = int(conn.scalar(select(func.count()).select_from(webhook_outbox)) or 0)
    finally:
        store.dispose()
    return elapsed, summary.counts().get("sent", 0), rows


def main(n: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        without, sent, _ = timed_tick(Path(tmp) / "without", n, subscribe=False)
        with_one, sent_with, rows = timed_tick(Path(tmp) / "with", n, subscribe=True)
    print(f"leads: {n}   sent: {sent} / {sent_with}   outbox rows: {rows}")
    print(f"tick, no subscription        : {sent / without:8.0f} msg/s  ({without:.2f} s)")
    print(f"tick, touch.sent subscribed  : {sent_with / with_one:8.0f} msg/s  ({with_one:.2f} s)")
    print(f"cost of the subscription     : {100 * (with_one - without) / without:+.1f}%")


if __name__ == "__main__":
    main(count_argument(2000))
