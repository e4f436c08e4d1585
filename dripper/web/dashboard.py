"""The read-only dashboard of `dripper serve`: what the campaigns did, what is due, a lead's
timeline, the call list. Server-rendered HTML with inline CSS and SVG charts
(`dripper.charts`): no script, no file from anywhere else.

- GET  /dashboard              campaigns and their steps with their counts, what is due in
                               the next 7 days, the last events
- GET  /dashboard/leads?q=     leads by e-mail prefix, name or company
- GET  /dashboard/leads/{id}   a lead and its timeline: sent, next, skipped and why, events
- GET  /dashboard/calls        call tasks by day and owner
- POST /dashboard/login        the token (form field `token`) -> a session cookie
- POST /dashboard/logout       ends the session

Protection: DRIPPER_DASHBOARD_TOKEN. Unset, the dashboard is off (403). Set, a page wants
either `Authorization: Bearer TOKEN` (scripts) or the session cookie that logging in with
the token sets: a random session id, HttpOnly, SameSite=Strict, scoped to /dashboard. The
session itself is a row in the database (`dashboard_sessions`: the id's SHA-256, issued,
expires after SESSION, ended), so logging out ends it on the server, for every `serve`
process and across restarts. Wrong tokens (login form or Bearer) are counted per client
address: LOCKOUT.limit of them within LOCKOUT.window lock that client out for LOCKOUT.lock
(429 with Retry-After, whatever token it sends meanwhile).

The pages read only. What writes to the database here: logging in and out (the session
rows) and wrong tokens (the failed-login counts).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dripper.campaign import timing
from dripper.campaign.model import CampaignFile
from dripper.campaign.timing import Duration
from dripper.clock import Clock
from dripper.leads.records import full_name
from dripper.planning.planner import Planner
from dripper.reports import charts
from dripper.reports import funnel as report
from dripper.store import STATES, Store, callrows, dashrows, leadrows, sessionrows
from dripper.store import touchrows as touch_q

if TYPE_CHECKING:
    from dripper.web.app import WebContext

SESSION = timedelta(hours=12)  # a working day: long enough not to nag, short enough for a lost laptop
# 5 wrong tokens in 15 minutes lock a client out for 15 minutes: a person who mistyped waits a
# little; a guesser gets 480 guesses a day per address, nothing against a random token.
LOCKOUT = sessionrows.Lockout(limit=5, window=timedelta(minutes=15), lock=timedelta(minutes=15))
COOKIE = "dripper_dashboard"
WINDOW_DAYS = 7
RECENT_EVENTS = 50
SEARCH_LIMIT = 50
MAX_QUERY = 320  # the longest e-mail address; longer search text is refused, not truncated
MAX_OWNER = 200
CALLS_SHOWN = 500
OVERDUE_CAP = 10_000  # the overdue count reads the queue in due order and stops here
CHUNK = 1000  # leads whose later steps are looked at per query
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
CHANNELS = ("email", "letter", "call")
OUTCOME_FIGURES = ("replies", "conversions", "unsubscribes", "bounces", "complaints")
_LEAD_ID = re.compile(r"[0-9]{1,18}")  # fits a BIGINT: a longer number is no lead, not a database error
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no e-mail, name or owner has them (PostgreSQL refuses NUL)

# What each reason means, as the README's table of states says it.
REASONS = {
    "unsubscribed": "the lead unsubscribed: no more mail from any campaign",
    "bounced": "the address bounced: no more mail",
    "complained": "the lead reported a message as spam: no more mail",
    "converted": "the lead converted: this sequence stopped",
    "replied": "the lead replied: this sequence stopped",
    "opted_out": "the lead stopped this campaign on the preference page (or on a call)",
    "stage_changed": "the lead moved to another stage, whose track started then",
    "campaign_changed": "a re-import moved the lead to another campaign",
    "step_removed": "the step was deleted from campaigns.yaml",
    "missed": "more than a day overdue when its turn came: skipped, not sent late",
    "no_postal_address": "a letter, and the lead's postal address is incomplete",
    "resent_after_interruption": "a worker died with it in flight: sent again with the same Message-ID",
    "call_task": "a call task for the sales team (see Calls)",
}
_REASON_PREFIXES = {
    "smtp_retry": "the SMTP server asked to try again later",
    "smtp_error": "the SMTP server refused it for good",
    "render_error": "a template failed for this lead",
    "letters_unavailable": "this machine cannot print letters yet (Pango is missing: `dripper check` says what "
    "to install); the letter waits and goes out once it is installed",
}

_CSS = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#1f2328;background:#f6f7f9}
header{background:#1f3b4d;color:#fff}nav{display:flex;gap:1.2em;align-items:center;max-width:78rem;margin:0 auto;
padding:.7em 1em}nav a{color:#dce9f2;text-decoration:none}nav a.here{color:#fff;font-weight:600;
border-bottom:2px solid #e08a2e}nav .brand{color:#fff;font-weight:700;margin-right:1em}nav form{margin-left:auto}
nav button{background:none;border:1px solid #9fb7c7;color:#fff;border-radius:4px;padding:.25em .8em;cursor:pointer}
main{max-width:78rem;margin:0 auto;padding:1em}h1{font-size:1.5em;margin:.4em 0 .6em}h2{font-size:1.2em;
margin:1.6em 0 .5em}h3{font-size:1.05em;margin:1.2em 0 .4em}section{background:#fff;border:1px solid #dde1e6;
border-radius:6px;padding:.6em 1em 1em;margin:1em 0}table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 10px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f1f3f5}td.small{white-space:normal;min-width:9em}td.wrap{white-space:normal;min-width:14em}.scroll{overflow-x:auto}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#667}.small{font-size:.85em}
.badge{display:inline-block;border-radius:10px;padding:0 .6em;font-size:.85em;background:#e3e6ea}
.badge.active,.badge.sent{background:#d7eed2}.badge.planned,.badge.sending{background:#d6e6f2}
.badge.suppressed,.badge.unsubscribed,.badge.bounced,.badge.complained{background:#f4d6dc}
.badge.skipped,.badge.failed{background:#f6e3c9}.badge.converted,.badge.replied{background:#e4dcf2}
.next{background:#eef6fb;border-left:4px solid #2f6f8f;padding:.5em 1em;margin:.8em 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1.2em;margin:.5em 0}dt{color:#556}dd{margin:0}
form.search input[type=search]{width:24em;padding:.35em}input,button{font-size:1em}
.login{max-width:26em;margin:3em auto}.login input{width:100%;padding:.45em;margin:.3em 0 .8em}
.error{color:#9b1c31}svg.chart{max-width:100%;height:auto;display:block;margin:.4em 0}
footer{max-width:78rem;margin:0 auto;padding:1em;color:#667;font-size:.85em}
"""
# Everything the pages need is in the page; nothing may be loaded, framed or posted elsewhere.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # the pages show people's names and addresses
}


class BadInput(Exception):
    """A request the dashboard cannot answer: the status and what to tell the person."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --- sessions -----------------------------------------------------------------------------

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Sessions:
    """Dashboard sessions, kept in the database. The cookie holds a random session id; the
    table holds its SHA-256 (a copy of the table opens nothing), and a MAC of the dashboard
    token keyed by the id, so changing DRIPPER_DASHBOARD_TOKEN ends every session."""

    store: Store
    token: str
    clock: Clock

    def _token_mac(self, session_id: str) -> str:
        return hmac.new(session_id.encode(), b"dripper.dashboard\0" + self.token.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A new session; the cookie's value."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.store.begin() as conn:
            sessionrows.add_session(conn, _id_hash(session_id), self._token_mac(session_id), now, now + SESSION)
        return session_id

    def valid(self, cookie: str | None) -> bool:
        if not cookie or not _SESSION_ID.fullmatch(cookie):
            return False
        with self.store.begin() as conn:
            row = sessionrows.session(conn, _id_hash(cookie))
        return (
            row is not None
            and row["ended_at"] is None
            and self.clock.now() < row["expires_at"]
            and hmac.compare_digest(row["token_mac"], self._token_mac(cookie))
        )

    def end(self, cookie: str | None) -> None:
        """Logged out: the session is over for whoever holds a copy of the cookie."""
        if cookie and _SESSION_ID.fullmatch(cookie):
            with self.store.begin() as conn:
                sessionrows.end_session(conn, _id_hash(cookie), self.clock.now())


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Outcome(Enum):
    RIGHT = "right"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong tokens from this client: the token was not even looked at


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    retry_after: int = 0  # seconds, when locked


@dataclass(frozen=True)
class Logins:
    """Token checks with a lockout per client address (LOCKOUT), counted in the database so
    that every `serve` process agrees."""

    store: Store
    token: str
    clock: Clock

    def check(self, client: str, given: object) -> Attempt:
        now = self.clock.now()
        with self.store.begin() as conn:
            # A locked-out client gets the same answer for the right token and a wrong one.
            if (until := sessionrows.locked_until(conn, client, now)) is not None:
                return Attempt(Outcome.LOCKED, _seconds(until - now))
            if isinstance(given, str) and same_token(given, self.token):
                sessionrows.clear_failures(conn, client)
                return Attempt(Outcome.RIGHT)
            if (until := sessionrows.record_failure(conn, client, now, LOCKOUT)) is not None:
                return Attempt(Outcome.LOCKED, _seconds(until - now))
        return Attempt(Outcome.WRONG)


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


def client_address(request: Request) -> str:
    """Who is trying: the client's IP address (uvicorn takes it from X-Forwarded-For when the
    proxy is trusted). An IPv6 client counts by its /64, which one host usually has whole."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def same_token(given: str, token: str) -> bool:
    """Constant-time: how much of a guess was right does not show in the time taken."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape"))


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def safe_next(target: str) -> str:
    """Where to go after logging in: a dashboard path of this server, never elsewhere."""
    path, _, query = target.partition("?")
    if not re.fullmatch(r"/dashboard(/[A-Za-z0-9_\-/]*)?", path) or "//" in path or len(target) > 1000:
        return "/dashboard"
    return path + (f"?{query}" if query and not re.search(r"[\r\n\\]", query) else "")


# --- HTML -----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Layout:
    zone: ZoneInfo
    zone_name: str

    def local(self, when: datetime | str | None, *, seconds: bool = False) -> str:
        if when is None or when == "":
            return ""
        instant = datetime.fromisoformat(when) if isinstance(when, str) else when
        return instant.astimezone(self.zone).strftime("%a %Y-%m-%d %H:%M" + (":%S" if seconds else ""))

    def day(self, when: datetime) -> date:
        return when.astimezone(self.zone).date()

    def page(
        self, title: str, body: str, *, here: str = "", status: int = 200, nav: bool = True, now: datetime | None = None
    ) -> HTMLResponse:
        links = [
            ("overview", "/dashboard", "Overview"),
            ("leads", "/dashboard/leads", "Leads"),
            ("calls", "/dashboard/calls", "Calls"),
        ]
        menu = "".join(
            f"<a href='{href}'{' class=here' if key == here else ''}>{label}</a>" for key, href, label in links
        )
        bar = (
            (
                f"<a class='brand' href='/dashboard'>dripper</a>{menu}<form method='post' action='/dashboard/logout'>"
                "<button type='submit'>Log out</button></form>"
            )
            if nav
            else "<span class='brand'>dripper</span>"
        )
        made = f" Page made {_e(self.local(now, seconds=True))}." if now else ""
        html = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<link rel='icon' href='data:,'>"  # no favicon request
            f"<title>{_e(title)} · dripper</title><style>{_CSS}</style></head><body>"
            f"<header><nav>{bar}</nav></header><main><h1>{_e(title)}</h1>{body}</main>"
            f"<footer>Read-only. Times are in {_e(self.zone_name)}.{made}</footer></body></html>"
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _table(
    head: Sequence[str],
    rows: Sequence[str],
    *,
    numeric_from: int | None = None,
    numeric_to: int | None = None,
    css: str = "",
) -> str:
    def numeric(i: int) -> bool:
        return numeric_from is not None and i >= numeric_from and (numeric_to is None or i < numeric_to)

    cells = "".join(f"<th{' class=n' if numeric(i) else ''}>{_e(h)}</th>" for i, h in enumerate(head))
    return (
        f"<div class='scroll'><table class='{css}'><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}"
        "</tbody></table></div>"
    )


def _badge(word: str) -> str:
    return f"<span class='badge {_e(word)}'>{_e(word)}</span>"


def explain(reason: str | None) -> str:
    """A reason, and what it means."""
    if not reason:
        return ""
    meaning = REASONS.get(reason) or _REASON_PREFIXES.get(reason.split(":", 1)[0].strip())
    return f"{_e(reason)}" + (f" <span class='muted small'>({_e(meaning)})</span>" if meaning else "")


def _lead_link(lead_id: int, label: str) -> str:
    return f"<a href='/dashboard/leads/{int(lead_id)}'>{_e(label)}</a>"


def _name(row: Mapping[str, Any]) -> str:
    return full_name(row.get("first_name") or "", row.get("last_name") or "")


def _event_detail(detail: Mapping[str, Any] | None, answered: Mapping[int, tuple[str, str]]) -> str:
    if not isinstance(detail, Mapping):
        return ""
    parts = []
    for key in (
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
    ):
        value = detail.get(key)
        if value not in (None, "", [], {}):
            text = str(value)
            parts.append(f"{_e(key)}: {_e(text if len(text) <= 160 else text[:157] + '…')}")
    touch = detail.get("touch")
    if isinstance(touch, int) and touch in answered:
        parts.append(f"answers {_e('/'.join(answered[touch]))}")
    return "; ".join(parts)


# --- what is due soon -------------------------------------------------------------------------


@dataclass
class DueSoon:
    """Touches due in the window, by local day: each lead's next touch (a row) and the later
    steps of its track that fall inside the window too."""

    days: list[date]
    by_day: dict[date, dict[str, int]] = field(default_factory=dict)
    by_step: dict[tuple[str, str, str], dict[date, int]] = field(default_factory=dict)
    later: int = 0  # of them, steps after the lead's next touch
    looked_at: int = 0  # of those, the leads whose later steps could fall in the window (their tracks walked)

    def add(self, campaign: str, step: str, channel: str, day: date, n: int = 1, *, later: bool = False) -> None:
        if day not in self.by_day:
            return
        self.by_day[day][channel] = self.by_day[day].get(channel, 0) + n
        cell = self.by_step.setdefault((campaign, step, channel), {})
        cell[day] = cell.get(day, 0) + n
        if later:
            self.later += n

    @property
    def total(self) -> int:
        return sum(sum(v.values()) for v in self.by_day.values())


_DST = timedelta(hours=2)  # a day on a lead's wall clock is 23 to 25 hours long


def _least(after: Duration) -> timedelta:
    """The least time `after` adds on any lead's clock (a month is at least 28 days)."""
    return timedelta(days=28 * after.months + after.days, seconds=after.seconds) - _DST


def _most(after: Duration) -> timedelta:
    return timedelta(days=31 * after.months + after.days, seconds=after.seconds) + _DST


def later_cutoffs(config: CampaignFile, end: datetime) -> dict[tuple[str, str], datetime]:
    """(campaign, step) -> the instant a lead whose next touch is that step must have
    entered the stage before, for a later step of its track to be due before `end`.

    A step is never due before the lead's entry plus its `after` (a send window only moves
    it on), so the earliest any later step can be due is entry + the least `after` among
    the steps that can come after this one: every other step of the track but those
    surely due before it and listed before it. Only the leads past the cutoff need their
    tracks walked; the rest cannot have a later step in the window."""
    out: dict[tuple[str, str], datetime] = {}
    for name, campaign in config.campaigns.items():
        for steps in campaign.stages.values():
            for k, step in enumerate(steps):
                later = [
                    other.after
                    for j, other in enumerate(steps)
                    if j != k and not (j < k and _most(other.after) < _least(step.after))
                ]
                if later:
                    out[(name, step.id)] = end - min(_least(after) for after in later)
    return out


def due_soon(conn: Connection, planner: Planner, layout: Layout, now: datetime) -> DueSoon:
    """Bounded work: the next touches are counted by one aggregate over the index of
    planned touches, and only the leads whose later steps can fall in the window (see
    `later_cutoffs`) have their tracks walked, a chunk at a time."""
    first = layout.day(now)
    days = [first + timedelta(days=i) for i in range(WINDOW_DAYS)]
    bounds = [now] + [timing.localize(datetime.combine(day + timedelta(days=1), time()), layout.zone) for day in days]
    end = bounds[-1]
    soon = DueSoon(days, {day: {} for day in days})
    for campaign, step, channel, index, n in dashrows.planned_by_day(conn, bounds):
        soon.add(campaign, step, channel, days[index], n)
    lead_ids = dashrows.later_candidates(conn, now, end, later_cutoffs(planner.config, end))
    soon.looked_at = len(lead_ids)
    for i in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[i : i + CHUNK]
        found = leadrows.by_ids(conn, chunk)
        their = dashrows.touches_of(conn, chunk)
        for lead_id in chunk:
            if (lead := found.get(lead_id)) is None:
                continue
            for item in report.upcoming_rows(planner, lead, their[lead_id]):
                if item["state"] == "planned" and now < item["due_at"] < end:
                    soon.add(item["campaign"], item["step_id"], item["channel"], layout.day(item["due_at"]), later=True)
    return soon


# --- the pages ----------------------------------------------------------------------------------


def _stage_chart(config: CampaignFile, counts: Mapping[str, int]) -> str:
    order = [s for s in config.stages if s in counts] + sorted(s for s in counts if s not in config.stages)
    if not order:
        return "<p class='muted'>No leads yet.</p>"
    return charts.funnel([(stage, counts[stage]) for stage in order], "Leads by funnel stage")


def _campaign_section(name: str, data: Mapping[str, Any], config: CampaignFile) -> str:
    campaign = config.campaigns.get(name)
    channels = {step.id: step.channel for track in campaign.stages.values() for step in track} if campaign else {}
    stages = {step.id: stage for stage, track in campaign.stages.items() for step in track} if campaign else {}
    steps = data["steps"]
    shown = ("sent", "planned", "suppressed", "skipped", "failed")
    chart = charts.columns(
        list(steps),
        [charts.Series(s, [steps[k][s] for k in steps]) for s in shown],
        f"{name}: touches per step by state",
        width=max(480, 110 * len(steps)),
    )
    rows = []
    for step, row in steps.items():
        reasons = ", ".join(f"{_e(r)} {n}" for r, n in sorted(row["reasons"].items()))
        # What came of the touches, where the report counts it (replies, conversions...).
        came = ", ".join(f"{_e(f)} {row[f]}" for f in OUTCOME_FIGURES if isinstance(row.get(f), int) and row[f])
        cells = "".join(f"<td class='n {s}'>{row[s]}</td>" for s in (*STATES, "total"))
        rows.append(
            f"<tr data-campaign='{_e(name)}' data-step='{_e(step)}'><td>{_e(step)}</td>"
            f"<td>{_e(stages.get(step, ''))}</td><td>{_e(channels.get(step, ''))}</td>{cells}"
            f"<td class='small outcomes'>{came}</td><td class='small'>{reasons}</td></tr>"
        )
    totals = {key: sum(row[key] for row in steps.values()) for key in (*STATES, "total")}
    rows.append(
        "<tr class='totals'><th>total</th><th></th><th></th>"
        + "".join(f"<th class='n {key}'>{n}</th>" for key, n in totals.items())
        + "<th></th><th></th></tr>"
    )
    about = f"<p class='muted'>{_e(campaign.description)}</p>" if campaign and campaign.description else ""
    table = _table(
        ["step", "stage", "channel", *STATES, "total", "outcomes", "reasons"],
        rows,
        numeric_from=3,
        numeric_to=4 + len(STATES),
        css="funnel",
    )
    return f"<section><h3>{_e(name)}</h3>{about}{chart}{table}</section>"


def _due_section(soon: DueSoon, overdue: int) -> str:
    labels = [day.strftime("%a %d %b") for day in soon.days]
    chart = charts.columns(
        labels,
        [charts.Series(c, [soon.by_day[d].get(c, 0) for d in soon.days]) for c in CHANNELS],
        "Touches due in the next 7 days, by channel",
    )
    day_rows = [
        f"<tr data-day='{d.isoformat()}'><td>{_e(label)}</td>"
        + "".join(f"<td class='n {c}'>{soon.by_day[d].get(c, 0)}</td>" for c in CHANNELS)
        + f"<td class='n total'>{sum(soon.by_day[d].values())}</td></tr>"
        for d, label in zip(soon.days, labels, strict=False)
    ]
    step_rows = []
    for (campaign, step, channel), per_day in sorted(soon.by_step.items(), key=lambda kv: (min(kv[1]), kv[0])):
        step_rows.append(
            f"<tr data-campaign='{_e(campaign)}' data-step='{_e(step)}'><td>{_e(campaign)}</td>"
            f"<td>{_e(step)}</td><td>{_e(channel)}</td>"
            + "".join(f"<td class='n'>{per_day.get(d, '') or ''}</td>" for d in soon.days)
            + f"<td class='n total'>{sum(per_day.values())}</td></tr>"
        )
    late = (
        (
            f"<p class='error'>{overdue:,}{'+' if overdue >= OVERDUE_CAP else ''} planned touches are overdue: "
            "due already and not sent yet (is a worker running?).</p>"
        )
        if overdue
        else ""
    )
    summary = (
        f"<p>{soon.total:,} touches due: {soon.total - soon.later:,} leads' next touches and {soon.later:,} "
        "later steps of their tracks (a track is planned one touch ahead: the rest of it has no rows yet)."
        "</p>"
    )
    by_step = (
        _table(["campaign", "step", "channel", *labels, "total"], step_rows, numeric_from=3, css="due-steps")
        if step_rows
        else "<p class='muted'>Nothing due in the next 7 days.</p>"
    )
    return (
        f"<section><h2>Due in the next 7 days</h2>{late}{summary}{chart}"
        f"{_table(['day', *CHANNELS, 'total'], day_rows, numeric_from=1, css='due-days')}"
        f"<h3>By step and channel</h3>{by_step}</section>"
    )


def _events_section(
    layout: Layout, events: Sequence[Mapping[str, Any]], answered: Mapping[int, tuple[str, str]]
) -> str:
    if not events:
        return "<section><h2>Recent events</h2><p class='muted'>No events yet.</p></section>"
    rows = [
        f"<tr><td>{_e(layout.local(e['at']))}</td><td>{_badge(e['kind'])}</td>"
        f"<td>{_lead_link(e['lead_id'], e['email'])}<br><span class='muted small'>"
        f"{_e(' · '.join(p for p in (_name(e), e['company']) if p))}</span></td><td>{_e(e['source'])}</td>"
        f"<td class='small'>{_event_detail(e['detail'], answered)}</td></tr>"
        for e in events
    ]
    return (
        f"<section><h2>Recent events</h2><p class='muted small'>The last {RECENT_EVENTS} recorded: replies, "
        "bounces, unsubscribes, complaints, conversions, stage changes, pauses and calls.</p>"
        f"{_table(['when', 'kind', 'lead', 'source', 'detail'], rows, css='events')}</section>"
    )


def _review_section(layout: Layout, messages: Sequence[Mapping[str, Any]]) -> str:
    """Inbound mail that changed nothing: a person decides (`dripper event EMAIL …`)."""
    if not messages:
        return ""
    rows = []
    for m in messages:
        detail = m["detail"] if isinstance(m["detail"], Mapping) else {}
        claimed = str(detail.get("suspected_lead") or "")
        rows.append(
            f"<tr><td>{_e(layout.local(m['at']))}</td><td>{_badge(detail.get('classified_as') or 'unknown')}"
            f"</td><td>{_e(claimed)}</td><td>{_e(detail.get('from') or '')}</td>"
            f"<td class='wrap'>{_e(detail.get('subject') or '')}</td>"
            f"<td class='wrap small'>{_e(detail.get('unverified') or detail.get('reason') or '')}</td></tr>"
        )
    return (
        f"<section><h2>Inbound mail to review</h2><p class='muted small'>The last {RECENT_EVENTS} messages "
        "that changed no lead: from strangers, claims about a lead that carry no proof that they concern our "
        "mail (anyone can write those), and messages that could not be read. If one is genuine, record it: "
        "<code>dripper event EMAIL unsubscribed</code> (or replied, bounced).</p>"
        + _table(
            ["when", "looks like", "claims to be about", "from", "subject", "why nothing changed"], rows, css="review"
        )
        + "</section>"
    )


def _lead_rows(leads: Sequence[Mapping[str, Any]], layout: Layout) -> list[str]:
    return [
        f"<tr><td>{_lead_link(lead['id'], lead['email'])}</td><td>{_e(_name(lead))}</td>"
        f"<td>{_e(lead['company'])}</td><td>{_e(lead['stage'])}</td><td>{_e(lead['campaign'])}</td>"
        f"<td>{_badge(report.lead_status(lead))}</td><td>{_e(layout.local(lead['stage_entered_at']))}</td></tr>"
        for lead in leads
    ]


def _timeline_chart(info: Mapping[str, Any], touches: Sequence[Mapping[str, Any]]) -> str:
    entered = datetime.fromisoformat(info["stage_entered_at"])
    marks = []
    for t in touches:
        due = datetime.fromisoformat(t["due"])
        if t["campaign"] == info["campaign"] and t["stage"] == info["stage"] and due >= entered:
            marks.append(((due - entered).total_seconds() / 86400, t["step"], t["state"]))
    if not marks:
        return ""
    days = max(30.0, max(day for day, _, _ in marks) * 1.05)
    return charts.timeline(marks, days, f"{info['stage']} track: days since the lead entered the stage")


def _touch_note(t: Mapping[str, Any], layout: Layout) -> str:
    notes = []
    if "batch" in t:
        notes.append(
            f"print batch {_e(t['batch'])}"
            + (f", mailed {_e(layout.local(t['mailed_at']))}" if t.get("mailed_at") else "")
        )
    if "call" in t:
        call = t["call"]
        notes.append(
            f"call on {_e(call['day'])}"
            + (f" ({_e(call['owner'])})" if call["owner"] else "")
            + f": {_e(call['outcome'] or 'open')}"
        )
    if t.get("message_id"):
        notes.append(f"<span class='muted'>{_e(t['message_id'])}</span>")
    return "<br>".join(notes)


def _own_clock(when: str, tz: str | None, layout: Layout) -> str:
    """The lead's own time, where its clock is not the page's (send windows are on its clock)."""
    if not tz or tz == layout.zone_name:
        return ""
    try:
        own = Layout(timing.zone(tz), tz).local(when)
    except ValueError:
        return ""
    return f" <span class='muted'>({_e(own)} in {_e(tz)})</span>"


def _lead_body(lead: Mapping[str, Any], plan: Mapping[str, Any], layout: Layout, now: datetime) -> str:
    info, touches = plan["lead"], plan["touches"]
    upcoming = [t for t in touches if t["state"] in ("planned", "sending")]
    if upcoming:
        t = upcoming[0]
        overdue = " (overdue: it goes out at the next tick)" if datetime.fromisoformat(t["due"]) <= now else ""
        nxt = (
            f"<div class='next' id='next-touch'>Next touch: <strong>{_e(t['campaign'])} / {_e(t['step'])}</strong> "
            f"({_e(t['channel'])}, {_e(t['kind'])}) on <strong>{_e(layout.local(t['due']))}</strong>"
            f"{_own_clock(t['due'], info['timezone'], layout)}{_e(overdue)}</div>"
        )
    else:
        why = f" (status: {_e(info['status'])})" if info["status"] != "active" else ""
        nxt = f"<div class='next' id='next-touch'>Nothing is planned for this lead{why}.</div>"
    address = info["postal_address"]
    lines = [
        lead["address_line1"],
        lead["address_line2"],
        " ".join(p for p in (lead["postal_code"], lead["city"], lead["region"]) if p),
        lead["country"],
    ]
    postal = "<br>".join(_e(line) for line in lines if line) or "<span class='muted'>none</span>"
    if not address["complete"]:
        postal += f"<br><span class='error small'>incomplete: {_e(address['problem'])} (letters are skipped)</span>"
    facts = [
        ("E-mail", _e(info["email"])),
        ("Name", _e(_name(info))),
        ("Company", _e(info["company"])),
        ("Status", _badge(info["status"])),
        ("Stage", f"{_e(info['stage'])} <span class='muted'>since {_e(layout.local(info['stage_entered_at']))}</span>"),
        ("Campaign", _e(info["campaign"])),
        ("Time zone", _e(info["timezone"] or "campaign default")),
        ("Postal address", postal),
    ]
    for kind in ("converted", "replied", "unsubscribed", "bounced", "complained"):
        if info[f"{kind}_at"]:
            facts.append((kind.capitalize(), _e(layout.local(info[f"{kind}_at"]))))
    if lead.get("opted_out"):
        facts.append(("Opted out of", _e(", ".join(map(str, lead["opted_out"])))))
    if lead.get("paused_until") and lead["paused_until"] > now:
        facts.append(("Paused until", _e(layout.local(lead["paused_until"]))))
    attrs = info.get("attrs") or {}
    if attrs:
        facts.append(("Attributes", "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(attrs.items()))))
    details = "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
    rows = [
        f"<tr data-step='{_e(t['step'])}' data-state='{_e(t['state'])}'><td>{_e(layout.local(t['due']))}</td>"
        f"<td>{_e(t['campaign'])}</td><td>{_e(t['step'])}</td><td>{_e(t['channel'])}</td><td>{_e(t['kind'])}</td>"
        f"<td>{_badge(t['state'])}</td><td class='wrap'>{explain(t['reason'])}</td>"
        f"<td>{_e(layout.local(t['sent_at']))}</td>"
        f"<td class='small'>{_touch_note(t, layout)}</td></tr>"
        for t in touches
    ]
    timeline = (
        _table(["due", "campaign", "step", "channel", "kind", "state", "why", "sent", "notes"], rows, css="touches")
        if rows
        else "<p class='muted'>No touches.</p>"
    )
    events = [
        f"<tr><td>{_e(layout.local(e['at']))}</td><td>{_badge(e['kind'])}</td><td>{_e(e['source'])}</td>"
        f"<td class='small'>{_event_detail(e['detail'], {})}</td></tr>"
        for e in plan["events"]
    ]
    event_table = (
        _table(["when", "kind", "source", "detail"], events, css="events")
        if events
        else "<p class='muted'>No events.</p>"
    )
    return (
        f"{nxt}<section><h2>Lead</h2>{details}</section><section><h2>Timeline</h2>"
        f"{_timeline_chart(info, touches)}{timeline}</section><section><h2>Events</h2>{event_table}</section>"
    )


def _calls_body(
    summary: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]], day: str, owner: str, open_only: bool
) -> str:
    form = (
        "<form class='search' method='get' action='/dashboard/calls'>"
        f"<label>Day <input type='date' name='day' value='{_e(day)}'></label> "
        f"<label>Owner <input type='text' name='owner' maxlength='{MAX_OWNER}' value='{_e(owner)}'></label> "
        f"<label><input type='checkbox' name='open' value='1'{' checked' if open_only else ''}> open only</label> "
        "<button type='submit'>Show</button></form>"
    )
    rows = [
        f"<tr><td>{_e(r['day'])}</td><td>{_e(r['owner'] or '-')}</td><td class='n open'>{r['open']}</td>"
        f"<td class='n done'>{r['done']}</td></tr>"
        for r in summary
    ]
    by = (
        _table(["day", "owner", "open", "done"], rows, numeric_from=2, css="call-summary")
        if rows
        else "<p class='muted'>No call tasks.</p>"
    )
    listed = []
    for task in tasks:
        attrs = task["attrs"] or {}
        phone = str(attrs.get("phone") or attrs.get("telephone") or "") if isinstance(attrs, Mapping) else ""
        points = task["talking_points"] or ""
        listed.append(
            f"<tr><td>{_e(task['day'])}</td><td>{_e(task['owner'] or '-')}</td>"
            f"<td>{_lead_link(task['lead_id'], task['email'])}<br><span class='muted small'>"
            f"{_e(' · '.join(p for p in (_name(task), task['company']) if p))}</span></td><td>{_e(phone)}</td>"
            f"<td>{_e(task['campaign'])} / {_e(task['step_id'])}</td><td>{_badge(task['outcome'] or 'open')}</td>"
            f"<td class='small'>{_e(task['note'] or '')}</td>"
            f"<td class='small'>{_e(points if len(points) <= 300 else points[:297] + '…')}</td></tr>"
        )
    more = (
        f"<p class='muted'>The first {CALLS_SHOWN} are listed; choose a day or an owner to see the rest.</p>"
        if len(tasks) >= CALLS_SHOWN
        else ""
    )
    table = (
        _table(
            ["day", "owner", "lead", "phone", "campaign / step", "outcome", "note", "talking points"],
            listed,
            css="calls",
        )
        if listed
        else ""
    )
    return f"{form}<section><h2>By day and owner</h2>{by}</section><section><h2>Tasks</h2>{more}{table}</section>"


# --- routes --------------------------------------------------------------------------------------


def dashboard_routes(ctx: WebContext) -> list[BaseRoute]:
    """The dashboard's routes, for `web.create_app`."""
    config = ctx.loaded.campaigns
    planner = ctx.loaded.planner
    zone_name = config.defaults.timezone
    layout = Layout(timing.zone(zone_name), zone_name)
    token = ctx.dashboard_token or None
    sessions = Sessions(ctx.store, token, ctx.clock) if token is not None else None
    logins = Logins(ctx.store, token, ctx.clock) if token is not None else None

    def disabled() -> Response:
        return layout.page(
            "Dashboard disabled",
            "<p>The dashboard is off. To turn it on, set "
            "<code>DRIPPER_DASHBOARD_TOKEN</code> to a long random secret in the environment of "
            "<code>dripper serve</code> and restart it; then log in here with that token.</p>",
            status=403,
            nav=False,
        )

    def login_page(target: str, *, status: int = 200, message: str = "") -> Response:
        note = f"<p class='error' role='alert'>{_e(message)}</p>" if message else ""
        body = (
            f"<div class='login'>{note}<form method='post' action='/dashboard/login'>"
            "<label for='token'>Dashboard token</label>"
            "<input id='token' type='password' name='token' autocomplete='current-password' required autofocus>"
            f"<input type='hidden' name='next' value='{_e(safe_next(target))}'>"
            "<button type='submit'>Log in</button></form>"
            "<p class='muted small'>The token is DRIPPER_DASHBOARD_TOKEN of this server.</p></div>"
        )
        response = layout.page("Log in", body, status=status, nav=False)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="dripper dashboard"'
        return response

    def refused(attempt: Attempt, target: str) -> Response:
        """What a wrong token, or any token from a locked-out client, gets."""
        if attempt.outcome is Outcome.LOCKED:
            minutes = (attempt.retry_after + 59) // 60
            response = login_page(
                target,
                status=429,
                message="Too many wrong tokens from your address: try again "
                f"in {minutes} minute{'s' if minutes != 1 else ''}.",
            )
            response.headers["Retry-After"] = str(attempt.retry_after)
            return response
        return login_page(target, status=401, message="That token is not valid.")

    def gate(request: Request) -> Response | None:
        """None when the request may see the page; else what to answer instead."""
        if token is None or sessions is None or logins is None:
            return disabled()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        given = _bearer(request)
        if given is not None:
            attempt = logins.check(client_address(request), given)
            return None if attempt.outcome is Outcome.RIGHT else refused(attempt, target)
        if sessions.valid(request.cookies.get(COOKIE)):
            return None
        ended = "Your session has ended: log in again." if COOKIE in request.cookies else ""
        return login_page(target, message=ended)

    def guarded(render: Callable[[Request, datetime], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if (denied := await run_in_threadpool(gate, request)) is not None:
                return denied
            try:
                return await run_in_threadpool(render, request, ctx.clock.now())
            except BadInput as exc:
                return layout.page(
                    "Not found" if exc.status == 404 else "Bad request", f"<p>{_e(exc.message)}</p>", status=exc.status
                )

        return endpoint

    def overview(request: Request, now: datetime) -> Response:
        with ctx.store.begin() as conn:
            funnel = report.funnel(conn, config)
            stages = dashrows.leads_by_stage(conn)
            soon = due_soon(conn, planner, layout, now)
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
        campaigns = "".join(_campaign_section(name, data, config) for name, data in funnel["campaigns"].items())
        body = (
            f"<section><h2>Leads</h2><p>{sum(stages.values()):,} leads.</p>{_stage_chart(config, stages)}"
            f"</section><h2>Campaigns</h2>{campaigns or '<p class=muted>No campaigns.</p>'}"
            f"{_due_section(soon, overdue)}{_events_section(layout, events, answered)}"
            f"{_review_section(layout, review)}"
        )
        return layout.page("Overview", body, here="overview", now=now)

    def leads_page(request: Request, now: datetime) -> Response:
        q = request.query_params.get("q", "")
        if len(q) > MAX_QUERY:
            raise BadInput(400, f"The search text is longer than {MAX_QUERY} characters.")
        if _CONTROL.search(q):
            raise BadInput(400, "The search text has control characters.")
        with ctx.store.begin() as conn:
            found = (
                dashrows.search_leads(conn, q, SEARCH_LIMIT) if q.strip() else dashrows.latest_leads(conn, SEARCH_LIMIT)
            )
        form = (
            "<form class='search' method='get' action='/dashboard/leads'>"
            f"<input type='search' name='q' value='{_e(q)}' maxlength='{MAX_QUERY}' "
            "placeholder='e-mail (start), name or company' aria-label='Search leads'> "
            "<button type='submit'>Search</button></form>"
        )
        if q.strip():
            heading = (
                f"<h2>{len(found)} lead{'s' if len(found) != 1 else ''} for “{_e(q.strip())}”"
                + (f" (the first {SEARCH_LIMIT})" if len(found) >= SEARCH_LIMIT else "")
                + "</h2>"
            )
        else:
            heading = f"<h2>The {SEARCH_LIMIT} leads added last</h2>"
        table = (
            _table(
                ["e-mail", "name", "company", "stage", "campaign", "status", "in stage since"],
                _lead_rows(found, layout),
                css="leads",
            )
            if found
            else "<p class='muted'>No lead matches.</p>"
        )
        return layout.page("Leads", f"{form}<section>{heading}{table}</section>", here="leads", now=now)

    def lead_page(request: Request, now: datetime) -> Response:
        raw = request.path_params["lead_id"]
        if not _LEAD_ID.fullmatch(raw):
            raise BadInput(400 if not raw.isdigit() else 404, f"No lead {raw[:40]!r}: lead ids are numbers.")
        with ctx.store.begin() as conn:
            lead = leadrows.by_id(conn, int(raw))
            if lead is None:
                raise BadInput(404, f"There is no lead {raw}.")
            plan = report.lead_plan(conn, lead, planner)
        title = _name(lead) or lead["email"]
        return layout.page(title, _lead_body(lead, plan, layout, now), here="leads", now=now)

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
        with ctx.store.begin() as conn:
            summary = dashrows.calls_by_day_owner(conn, which_day, owner or None)
            tasks = callrows.listing(conn, day=which_day, owner=owner or None, open_only=open_only, limit=CALLS_SHOWN)
        return layout.page(
            "Calls", _calls_body(summary, tasks, which_day or "", owner, open_only), here="calls", now=now
        )

    async def login(request: Request) -> Response:
        if token is None or sessions is None or logins is None:
            return disabled()
        form = await request.form()
        given, target = form.get("token"), safe_next(str(form.get("next") or "/dashboard"))
        attempt = await run_in_threadpool(logins.check, client_address(request), given)
        if attempt.outcome is not Outcome.RIGHT:
            return refused(attempt, target)
        session = await run_in_threadpool(sessions.issue)
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        seconds = int(SESSION.total_seconds())
        response.set_cookie(
            COOKIE,
            session,
            max_age=seconds,
            expires=seconds,
            path="/dashboard",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        if sessions is not None:  # ended on the server: a copy of the cookie opens nothing any more
            await run_in_threadpool(sessions.end, request.cookies.get(COOKIE))
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.delete_cookie(
            COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    return [
        Route("/dashboard", guarded(overview), methods=["GET"]),
        Route("/dashboard/leads", guarded(leads_page), methods=["GET"]),
        Route("/dashboard/leads/{lead_id}", guarded(lead_page), methods=["GET"]),
        Route("/dashboard/calls", guarded(calls_page), methods=["GET"]),
        Route("/dashboard/login", login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
    ]


__all__ = [
    "COOKIE",
    "LOCKOUT",
    "SESSION",
    "Attempt",
    "BadInput",
    "Logins",
    "Outcome",
    "Sessions",
    "client_address",
    "dashboard_routes",
    "due_soon",
    "explain",
    "safe_next",
    "same_token",
]
