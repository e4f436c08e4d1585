"""The dashboard's pages: the endpoints, and the context each hands its template in
templates/dashboard/. Every endpoint reads what it needs from `request.app.state`
(`.web`: the serve context; `.dashboard`: `DashboardState`) and answers only once
`auth.gate` lets the request through."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dripper.campaign import timing
from dripper.campaign.model import CampaignFile
from dripper.leads.records import Lead, full_name
from dripper.planning.planner import Planner
from dripper.reports import charts
from dripper.reports import funnel as report
from dripper.states import CHANNELS
from dripper.store import STATES
from dripper.store.queries import callrows, dashrows, leadrows, webhookrows
from dripper.store.queries import touchrows as touch_q
from dripper.web.dashboard import auth
from dripper.web.dashboard.due import DueSoon, due_soon
from dripper.web.dashboard.layout import Layout, render
from dripper.web.dashboard.points import talking_points
from dripper.web.dashboard.reasons import meaning

if TYPE_CHECKING:
    from dripper.web.context import WebContext

RECENT_EVENTS = 50
SEARCH_LIMIT = 50
MAX_QUERY = 320  # the longest e-mail address; longer search text is refused, not truncated
MAX_OWNER = 200
CALLS_SHOWN = 500
OVERDUE_CAP = 10_000  # the overdue count reads the queue in due order and stops here
# What a person looking at a lead's course wants to see (not "unknown": those have no lead).
EVENT_KINDS = (
    "replied",
    "bounced",
    "unsubscribed",
    "complained",
    "converted",
    "stage",
    "soft_bounce",
    "auto_reply",
    "opted_out",
    "paused",
    "called",
)
OUTCOME_FIGURES = ("replies", "conversions", "unsubscribes", "bounces", "complaints")
# The fields of an event's detail worth showing, in this order.
DETAIL_KEYS = (
    "stage",
    "campaign",
    "step",
    "outcome",
    "note",
    "until",
    "back_on",
    "status",
    "reason",
    "subject",
    "from",
    "via",
    "url",  # a `clicked` event's link (issue 18)
)
_LEAD_ID = re.compile(r"[0-9]{1,18}")  # fits a BIGINT: a longer number is no lead, not a database error
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no e-mail, name or owner has them (PostgreSQL refuses NUL)
Row = Mapping[Any, Any]  # a database row (RowMapping) or one of a lead plan's dicts


class BadInput(Exception):
    """A request the dashboard cannot answer: the status and what to tell the person."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DashboardState:
    """What the dashboard's endpoints share, built once by `web.create_app`: `app.state.dashboard`.
    No token: the dashboard is off, and `sessions` and `logins` are None."""

    ctx: WebContext
    layout: Layout
    sessions: auth.Sessions | None
    logins: auth.Logins | None

    @property
    def config(self) -> CampaignFile:
        return self.ctx.loaded.campaigns

    @property
    def planner(self) -> Planner:
        return self.ctx.loaded.planner


def dashboard_state(ctx: WebContext) -> DashboardState:
    zone_name = ctx.loaded.campaigns.defaults.timezone
    token = ctx.dashboard_token or None
    return DashboardState(
        ctx,
        Layout(timing.zone(zone_name), zone_name),
        auth.Sessions(ctx.store, token, ctx.clock) if token is not None else None,
        auth.Logins(ctx.store, token, ctx.clock) if token is not None else None,
    )


def _state(request: Request) -> DashboardState:
    state: DashboardState = request.app.state.dashboard
    return state


def _page(request: Request, template: str, title: str, **context: Any) -> Response:
    return render(request, template, title, meaning_of=meaning, **context)


# --- what the templates are given --------------------------------------------------------------


def name_of(row: Row) -> str:
    return full_name(row.get("first_name") or "", row.get("last_name") or "")


def who(row: Row) -> str:
    """Name and company, for the line under a lead's e-mail."""
    return " · ".join(p for p in (name_of(row), row["company"]) if p)


def event_detail(detail: object, answered: Mapping[int, tuple[str, str]]) -> str:
    """An event's detail as one line of text (`key: value; …`), long values cut."""
    if not isinstance(detail, Mapping):
        return ""
    parts = []
    for key in DETAIL_KEYS:
        value = detail.get(key)
        if value not in (None, "", [], {}):
            text = str(value)
            parts.append(f"{key}: {text if len(text) <= 160 else text[:157] + '…'}")
    touch = detail.get("touch")
    if isinstance(touch, int) and touch in answered:
        parts.append(f"answers {'/'.join(answered[touch])}")
    return "; ".join(parts)


@dataclass(frozen=True)
class StepRow:
    """A step's row in a campaign's table on the overview."""

    step: str
    stage: str
    channel: str
    counts: Mapping[str, int]  # per state, and "total"
    outcomes: str
    reasons: str


@dataclass(frozen=True)
class CampaignSection:
    name: str
    description: str
    charts: Sequence[Markup]  # touches per step by state, STEPS_A_CHART steps a chart
    rows: Sequence[StepRow]
    totals: Mapping[str, int]


def campaign_section(name: str, data: Mapping[str, Any], config: CampaignFile) -> CampaignSection:
    campaign = config.campaigns.get(name)
    channels = {step.id: step.channel for track in campaign.stages.values() for step in track} if campaign else {}
    stages = {step.id: stage for stage, track in campaign.stages.items() for step in track} if campaign else {}
    steps = data["steps"]
    shown = ("sent", "planned", "suppressed", "skipped", "failed")
    ids = list(steps)
    # One scale for every part, so that bars compare across them (as in the HTML report).
    peak = max([sum(steps[k][s] for s in shown) for k in ids] + [1])
    parts = charts.split(ids)
    figures = [
        Markup(
            charts.stacked_bars(
                ids[start:end],
                [charts.Series(s, [steps[k][s] for k in ids[start:end]]) for s in shown],
                f"{name}: touches per step by state"
                + (f" (steps {start + 1}–{end} of {len(ids)})" if len(parts) > 1 else ""),
                max_value=peak,
                width=560,
                label_w=charts.label_width(ids),
            )
        )
        for start, end in parts
        if end > start
    ]
    rows = [
        StepRow(
            step,
            stages.get(step, ""),
            channels.get(step, ""),
            {key: row[key] for key in (*STATES, "total")},
            # What came of the touches, where the report counts it (replies, conversions...).
            ", ".join(f"{f} {row[f]}" for f in OUTCOME_FIGURES if isinstance(row.get(f), int) and row[f]),
            ", ".join(f"{r} {n}" for r, n in sorted(row["reasons"].items())),
        )
        for step, row in steps.items()
    ]
    totals = {key: sum(row[key] for row in steps.values()) for key in (*STATES, "total")}
    return CampaignSection(name, (campaign.description or "") if campaign else "", figures, rows, totals)


@dataclass(frozen=True)
class DueSection:
    soon: DueSoon
    overdue: int
    labels: Sequence[str]
    chart: Markup
    by_step: Sequence[tuple[tuple[str, str, str], Mapping[date, int]]]


def due_section(soon: DueSoon, overdue: int) -> DueSection:
    labels = [day.strftime("%a %d %b") for day in soon.days]
    chart = charts.columns(
        labels,
        [charts.Series(c, [soon.by_day[d].get(c, 0) for d in soon.days]) for c in CHANNELS],
        "Touches due in the next 7 days, by channel",
    )
    by_step = sorted(soon.by_step.items(), key=lambda kv: (min(kv[1]), kv[0]))
    return DueSection(soon, overdue, labels, Markup(chart), by_step)


def stage_chart(config: CampaignFile, counts: Mapping[str, int]) -> Markup | None:
    order = [s for s in config.stages if s in counts] + sorted(s for s in counts if s not in config.stages)
    if not order:
        return None
    return Markup(charts.funnel([(stage, counts[stage]) for stage in order], "Leads by funnel stage"))


def timeline_chart(info: Mapping[str, Any], touches: Sequence[Mapping[str, Any]]) -> Markup | None:
    entered = datetime.fromisoformat(info["stage_entered_at"])
    marks = []
    for t in touches:
        due = datetime.fromisoformat(t["due"])
        if t["campaign"] == info["campaign"] and t["stage"] == info["stage"] and due >= entered:
            marks.append(((due - entered).total_seconds() / 86400, t["step"], t["state"]))
    if not marks:
        return None
    days = max(30.0, max(day for day, _, _ in marks) * 1.05)
    return Markup(charts.timeline(marks, days, f"{info['stage']} track: days since the lead entered the stage"))


def own_clock(when: str, tz: str | None, layout: Layout) -> str:
    """The lead's own time, where its clock is not the page's (send windows are on its clock)."""
    if not tz or tz == layout.zone_name:
        return ""
    try:
        return Layout(timing.zone(tz), tz).local(when)
    except ValueError:
        return ""


def touch_notes(t: Mapping[str, Any], layout: Layout) -> list[str]:
    """A touch's print batch or call, as lines of text (its Message-ID is shown apart)."""
    notes = []
    if "batch" in t:
        notes.append(
            f"print batch {t['batch']}" + (f", mailed {layout.local(t['mailed_at'])}" if t.get("mailed_at") else "")
        )
    if "call" in t:
        call = t["call"]
        notes.append(
            f"call on {call['day']}"
            + (f" ({call['owner']})" if call["owner"] else "")
            + f": {call['outcome'] or 'open'}"
        )
    return notes


def postal_lines(lead: Lead) -> list[str]:
    lines = [
        lead.address_line1,
        lead.address_line2,
        " ".join(p for p in (lead.postal_code, lead.city, lead.region) if p),
        lead.country,
    ]
    return [line for line in lines if line]


def phone_of(task: Row) -> str:
    attrs = task["attrs"] or {}
    return str(attrs.get("phone") or attrs.get("telephone") or "") if isinstance(attrs, Mapping) else ""


# --- endpoints -------------------------------------------------------------------------------------


def _guarded(render_page: Callable[[Request, datetime], Response]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if (denied := await run_in_threadpool(auth.gate, request)) is not None:
            return denied
        try:
            return await run_in_threadpool(render_page, request, _state(request).ctx.clock.now())
        except BadInput as exc:
            return render(
                request,
                "dashboard/layout.html",
                "Not found" if exc.status == 404 else "Bad request",
                status=exc.status,
                message=exc.message,
            )

    endpoint.__name__ = render_page.__name__
    return endpoint


def overview_page(request: Request, now: datetime) -> Response:
    state = _state(request)
    with state.ctx.store.begin() as conn:
        funnel = report.funnel(conn, state.config)
        stages = dashrows.leads_by_stage(conn)
        soon = due_soon(conn, state.planner, state.layout, now)
        overdue = touch_q.count_due(conn, now, up_to=OVERDUE_CAP)
        events = dashrows.recent_events(conn, EVENT_KINDS, RECENT_EVENTS)
        review = dashrows.inbound_to_review(conn, RECENT_EVENTS)
        answered = dashrows.touch_steps(
            conn,
            [
                e["detail"]["touch"]
                for e in events
                if isinstance(e["detail"], Mapping) and isinstance(e["detail"].get("touch"), int)
            ],
        )
    return _page(
        request,
        "dashboard/overview.html",
        "Overview",
        here="overview",
        now=now,
        leads=sum(stages.values()),
        stage_chart=stage_chart(state.config, stages),
        campaigns=[campaign_section(name, data, state.config) for name, data in funnel["campaigns"].items()],
        due=due_section(soon, overdue),
        overdue_cap=OVERDUE_CAP,
        channels=CHANNELS,
        recent=RECENT_EVENTS,
        events=[(e, who(e), event_detail(e["detail"], answered)) for e in events],
        review=[(m, m["detail"] if isinstance(m["detail"], Mapping) else {}) for m in review],
    )


def leads_page(request: Request, now: datetime) -> Response:
    q = request.query_params.get("q", "")
    if len(q) > MAX_QUERY:
        raise BadInput(400, f"The search text is longer than {MAX_QUERY} characters.")
    if _CONTROL.search(q):
        raise BadInput(400, "The search text has control characters.")
    with _state(request).ctx.store.begin() as conn:
        found = dashrows.search_leads(conn, q, SEARCH_LIMIT) if q.strip() else dashrows.latest_leads(conn, SEARCH_LIMIT)
    return _page(
        request,
        "dashboard/leads.html",
        "Leads",
        here="leads",
        now=now,
        q=q,
        max_query=MAX_QUERY,
        limit=SEARCH_LIMIT,
        found=[(lead, lead.full_name, lead.status) for lead in found],
    )


def lead_page(request: Request, now: datetime) -> Response:
    state = _state(request)
    raw = request.path_params["lead_id"]
    if not _LEAD_ID.fullmatch(raw):
        raise BadInput(400 if not raw.isdigit() else 404, f"No lead {raw[:40]!r}: lead ids are numbers.")
    with state.ctx.store.begin() as conn:
        lead = leadrows.by_id(conn, int(raw))
        if lead is None:
            raise BadInput(404, f"There is no lead {raw}.")
        plan = report.lead_plan(conn, lead, state.planner)
    info, touches = plan["lead"], plan["touches"]
    upcoming = [t for t in touches if t["state"] in ("planned", "sending")]
    nxt = upcoming[0] if upcoming else None
    return _page(
        request,
        "dashboard/lead.html",
        lead.full_name or lead.email,
        here="leads",
        now=now,
        lead=lead,
        info=info,
        lead_name=name_of(info),
        next_touch=nxt,
        next_overdue=nxt is not None and datetime.fromisoformat(nxt["due"]) <= now,
        next_own_clock=own_clock(nxt["due"], info["timezone"], state.layout) if nxt else "",
        postal=postal_lines(lead),
        paused=lead.paused_until if lead.paused_until and lead.paused_until > now else None,
        attrs=sorted((info.get("attrs") or {}).items()),
        chart=timeline_chart(info, touches),
        touches=[(t, touch_notes(t, state.layout)) for t in touches],
        events=[(e, event_detail(e["detail"], {})) for e in plan["events"]],
    )


def calls_page(request: Request, now: datetime) -> Response:
    day = request.query_params.get("day", "").strip()
    owner = request.query_params.get("owner", "").strip()
    open_only = request.query_params.get("open", "") in ("1", "on", "true")
    if day and day != "all":
        try:
            if not _DAY.fullmatch(day):
                raise ValueError(day)
            date.fromisoformat(day)
        except ValueError:
            raise BadInput(400, "Write the day as YYYY-MM-DD.") from None
    if len(owner) > MAX_OWNER or _CONTROL.search(owner):
        raise BadInput(400, f"The owner must be a name of at most {MAX_OWNER} characters.")
    which_day = day if day and day != "all" else None
    with _state(request).ctx.store.begin() as conn:
        summary = dashrows.calls_by_day_owner(conn, which_day, owner or None)
        tasks = callrows.listing(conn, day=which_day, owner=owner or None, open_only=open_only, limit=CALLS_SHOWN)
    return _page(
        request,
        "dashboard/calls.html",
        "Calls",
        here="calls",
        now=now,
        day=which_day or "",
        owner=owner,
        open_only=open_only,
        max_owner=MAX_OWNER,
        shown=CALLS_SHOWN,
        summary=summary,
        tasks=[(t, who(t), phone_of(t), talking_points(t["talking_points"] or "")) for t in tasks],
    )


WEBHOOKS_SHOWN = 200


def webhooks_page(request: Request, now: datetime) -> Response:
    """Deliveries by state and the dead ones (`dripper webhooks retry` sends them again)."""
    with _state(request).ctx.store.begin() as conn:
        counts = webhookrows.counts(conn)
        dead = webhookrows.listing(conn, webhookrows.DEAD, limit=WEBHOOKS_SHOWN)
        subs = webhookrows.subscriptions(conn)
    return _page(
        request,
        "dashboard/webhooks.html",
        "Webhooks",
        here="webhooks",
        now=now,
        counts=counts,
        dead=dead,
        shown=WEBHOOKS_SHOWN,
        subscriptions=subs,
    )


def dashboard_routes() -> list[BaseRoute]:
    """The dashboard's routes, for `web.create_app` (which puts `DashboardState` in the app's state)."""
    return [
        Route("/dashboard", _guarded(overview_page), methods=["GET"]),
        Route("/dashboard/leads", _guarded(leads_page), methods=["GET"]),
        Route("/dashboard/leads/{lead_id}", _guarded(lead_page), methods=["GET"]),
        Route("/dashboard/calls", _guarded(calls_page), methods=["GET"]),
        Route("/dashboard/webhooks", _guarded(webhooks_page), methods=["GET"]),
        Route("/dashboard/login", auth.login, methods=["POST"]),
        Route("/dashboard/logout", auth.logout, methods=["POST"]),
    ]


__all__ = ["BadInput", "DashboardState", "dashboard_routes", "dashboard_state", "event_detail"]
