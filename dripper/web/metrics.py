"""Prometheus metrics for `GET /metrics` on `dripper serve`, read from the database at scrape time.

Why the database and not in-process counters: workers are separate processes (any number,
on any machine) and `serve` is yet another, so counters kept in memory would each tell a
part of the story and reset on every restart. The `touches` and `events` tables are the
single source of truth, so every scrape reports the same figures whichever worker sent
and however many there are.

Every figure is one aggregate query: nothing is loaded row by row into Python. The
counts and the histogram still read every touch, so a scrape's cost grows with the table
(see `dripper.store.queries.metricrows`, which reads them); `dripper_metrics_scrape_duration_seconds` shows it.

Metrics (what each one means is in its HELP text, and in docs/operators/metrics.md):
- dripper_touches_due, dripper_touches_oldest_due_seconds   the backlog
- dripper_touches_total{state,channel}                      terminal states (counter)
- dripper_touches_pending{state,channel}                    planned / sending (gauge)
- dripper_touches_sending_expired                           claims past their lease: a dead worker
- dripper_send_delay_seconds{channel}                       histogram of sent_at - due_at
- dripper_events_total{kind}                                inbound events by kind
- dripper_metrics_scrape_duration_seconds                   what this scrape cost

There is no histogram of the SMTP transaction time: the database records when a touch
was claimed and when it was sent, not how long the SMTP conversation took, and the
difference (claim -> sent) mostly measures the queue inside a tick, not the server.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dripper.clock import Clock
from dripper.leads.events import KINDS
from dripper.sending.tick import LEASE
from dripper.states import CHANNELS  # always exported, at 0 if need be: PromQL rate() needs the series
from dripper.store import Store
from dripper.store.queries.metricrows import DELAY_BUCKETS, DelayHistogram, FigureReader, Figures
from dripper.store.tables import PENDING, STATES
from dripper.web.guard import RETRY_AFTER, database_unavailable

log = logging.getLogger("dripper.metrics")

# Bucket bounds written as Prometheus writes them ("0.5", "1.0", "+Inf"); the library leaves it untyped.
_go_float: Callable[[float], str] = floatToGoString


def _buckets(histogram: DelayHistogram) -> list[tuple[str, float]]:
    bounds = [_go_float(b) for b in DELAY_BUCKETS]
    return [*zip(bounds, map(float, histogram.cumulative), strict=False), ("+Inf", float(histogram.count))]


class DripperCollector(Collector):
    """Reads the figures from the database each time Prometheus scrapes."""

    def __init__(self, store: Store, clock: Clock):
        self.clock = clock
        self._reader = FigureReader(store, LEASE)

    def figures(self) -> Figures:
        return self._reader.read(self.clock.now())

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        yield from families(self.figures())
        scrape = GaugeMetricFamily(
            "dripper_metrics_scrape_duration_seconds",
            "Seconds this scrape spent reading the database; watch it as the tables grow.",
        )
        scrape.add_metric([], time.perf_counter() - started)
        yield scrape

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database: describe the names without samples.
        return list(families(Figures()))


# --- the families ------------------------------------------------------------------------


def _backlog_families(figures: Figures) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "dripper_touches_due", "Touches planned and due now, not yet claimed by a worker.", value=figures.due
    )
    yield GaugeMetricFamily(
        "dripper_touches_oldest_due_seconds",
        "Age of the oldest due planned touch, in seconds; 0 when none is due.",
        value=figures.oldest_due_seconds,
    )
    yield GaugeMetricFamily(
        "dripper_touches_sending_expired",
        f"Touches in `sending` whose {int(LEASE.total_seconds())} s lease ran out: a worker died "
        "with them; the next tick resends them.",
        value=figures.sending_expired,
    )


def _state_families(figures: Figures) -> Iterator[Metric]:
    channels = sorted(set(CHANNELS) | {channel for _state, channel in figures.by_state})
    done = CounterMetricFamily(
        "dripper_touches", "Touches that reached a terminal state, by state and channel.", labels=["state", "channel"]
    )
    pending = GaugeMetricFamily(
        "dripper_touches_pending", "Touches not yet done (planned, sending), by channel.", labels=["state", "channel"]
    )
    for state in STATES:
        family = pending if state in PENDING else done
        for channel in channels:
            family.add_metric([state, channel], figures.by_state.get((state, channel), 0))
    yield done
    yield pending


def _delay_family(figures: Figures) -> Metric:
    histogram = HistogramMetricFamily(
        "dripper_send_delay_seconds",
        "How long sent touches waited once due: sent_at - due_at (the last due time: retries, limits and pauses "
        "move it on), in seconds, by channel.",
        labels=["channel"],
    )
    for channel in sorted(set(CHANNELS) | set(figures.delays)):
        found = figures.delays.get(channel, DelayHistogram())
        histogram.add_metric([channel], _buckets(found), sum_value=found.total_seconds)
    return histogram


def _event_family(figures: Figures) -> Metric:
    family = CounterMetricFamily(
        "dripper_events",
        "Events recorded for leads (replies, bounces, unsubscribes, stage changes...), by kind.",
        labels=["kind"],
    )
    for kind in sorted(set(KINDS) | set(figures.events)):
        family.add_metric([kind], figures.events.get(kind, 0))
    return family


def families(figures: Figures) -> Iterator[Metric]:
    yield from _backlog_families(figures)
    yield from _state_families(figures)
    yield _delay_family(figures)
    yield _event_family(figures)


# --- the endpoint ----------------------------------------------------------------------------


def registry_for(store: Store, clock: Clock) -> CollectorRegistry:
    # A registry of our own: the default one would add the `serve` process's own metrics,
    # which say nothing about the drips.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DripperCollector(store, clock))
    return registry


def _token_ok(request: Request, token: str | None) -> bool:
    if not token:
        return True  # no token set: open, on the interface `serve` binds (127.0.0.1 by default)
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def metrics_route(store: Store, clock: Clock, token: str | None) -> Route:
    """GET /metrics; with `token` set, only for `Authorization: Bearer <token>`."""
    registry = registry_for(store, clock)

    async def metrics(request: Request) -> Response:
        if not _token_ok(request, token):
            return PlainTextResponse(
                "a bearer token is required (DRIPPER_METRICS_TOKEN)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        try:
            body = await run_in_threadpool(encoder, registry)
        except Exception as exc:
            if not database_unavailable(exc):
                raise  # a bug: 500, logged by dripper.web.guard
            # Prometheus records the failed scrape (up == 0); the log says why.
            log.error("metrics: the database did not answer: %s", exc)
            return PlainTextResponse(
                "database unreachable\n", status_code=503, headers={"Retry-After": str(RETRY_AFTER)}
            )
        return Response(body, media_type=content_type)

    return Route("/metrics", metrics, methods=["GET"])
