"""Delivering the outbox: claim due rows with a lease, POST each signed per Standard
Webhooks, and record the result. At least once: a row is done only when the receiver
answered 2xx; a worker that dies mid-delivery leaves its rows to the lease.

Signing uses the maintained `standardwebhooks` package (the specification's reference
implementation): `webhook-id` is the outbox row's message id (the same on every retry, so
a receiver can drop duplicates), `webhook-timestamp` the attempt's time, and
`webhook-signature` `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.

A failed attempt is retried with exponential backoff and jitter (30 s, 1 min, 2 min, …,
at most an hour apart) for 24 hours from the event, and at most MAX_ATTEMPTS times; then
the row is `dead`, shown by `dripper webhooks failed` and the dashboard until
`dripper webhooks retry` sends it again.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from standardwebhooks import Webhook

from dripper.clock import Clock
from dripper.store import Store
from dripper.store.queries import webhookrows as rows
from dripper.store.queries.webhookrows import Delivery, Subscription

log = logging.getLogger("dripper.webhooks")

FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
MAX_ATTEMPTS = 40  # at an hour apart at most, 24 hours hold about 30 attempts
LEASE = timedelta(minutes=2)
KEEP_DELIVERED = timedelta(days=30)  # then a delivered row is deleted: the outbox stays small
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
BATCH = 50
USER_AGENT = "dripper-webhooks"


@dataclass(frozen=True)
class Summary:
    delivered: int = 0
    failed: int = 0  # attempts that failed and will be retried
    dead: int = 0


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from FIRST_RETRY up to
    LONGEST_WAIT, each between half and all of it ("equal jitter"), so receivers coming
    back up are not hit by every sender at once."""
    full = min(LONGEST_WAIT, FIRST_RETRY * (2 ** min(attempts - 1, 20)))
    wait: timedelta = full * rng.uniform(0.5, 1.0)
    return wait


def secret_of(subscription: Subscription, env: Mapping[str, str]) -> str:
    """The signing secret; ValueError (kept as the attempt's error) when it is missing."""
    if subscription.secret_env:
        value = env.get(subscription.secret_env, "")
        if not value:
            raise ValueError(f"environment variable {subscription.secret_env} (the webhook's secret) is not set")
        return value
    if subscription.secret:
        return subscription.secret
    raise ValueError("the subscription has no secret")


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def attempt(
    client: httpx.Client, subscription: Subscription, delivery: Delivery, at: datetime, env: Mapping[str, str]
) -> str | None:
    """POST once; None when the receiver took it (2xx), else what went wrong."""
    try:
        headers = signed_headers(secret_of(subscription, env), delivery.message_id, at, delivery.payload)
        response = client.post(subscription.url, content=delivery.payload.encode(), headers=headers)
    except Exception as exc:  # whatever fails sending one delivery is its failed attempt, never the run's
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def deliver_due(
    store: Store,
    clock: Clock,
    worker: str,
    *,
    env: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    rng: random.Random | None = None,
    limit: int = 1000,
) -> Summary:
    """Deliver what is due, BATCH rows per claim, until nothing is due or `limit` tried."""
    env = os.environ if env is None else env
    rng = rng or random.Random()
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
    delivered = failed = dead = tried = 0
    with store.begin() as conn:
        rows.purge_delivered(conn, clock.now() - KEEP_DELIVERED)
    try:
        while tried < limit:
            now = clock.now()
            with store.begin() as conn:
                claimed = rows.claim(conn, now, worker, now + LEASE, min(BATCH, limit - tried))
                subs = {s.id: s for s in rows.subscriptions(conn, include_removed=True)} if claimed else {}
            if not claimed:
                break
            for delivery in claimed:
                tried += 1
                at = clock.now()
                error = attempt(client, subs[delivery.subscription_id], delivery, at, env)
                with store.begin() as conn:
                    if error is None:
                        rows.finish(
                            conn,
                            delivery.id,
                            worker,
                            state=rows.DELIVERED,
                            delivered_at=at,
                            attempts=delivery.attempts + 1,
                            last_error=None,
                        )
                        delivered += 1
                        continue
                    attempts = delivery.attempts + 1
                    retry_at = at + backoff(attempts, rng)
                    if attempts >= MAX_ATTEMPTS or retry_at > delivery.created_at + GIVE_UP_AFTER:
                        rows.finish(conn, delivery.id, worker, state=rows.DEAD, attempts=attempts, last_error=error)
                        dead += 1
                        log.warning(
                            "webhook %s to %s is dead after %d attempts: %s",
                            delivery.event,
                            subs[delivery.subscription_id].url,
                            attempts,
                            error,
                        )
                    else:
                        rows.finish(
                            conn,
                            delivery.id,
                            worker,
                            state=rows.PENDING,
                            attempts=attempts,
                            next_attempt_at=retry_at,
                            last_error=error,
                        )
                        failed += 1
    finally:
        if own:
            client.close()
    return Summary(delivered, failed, dead)
