"""Who may see the dashboard: the token, the sessions that logging in with it opens, the
lockout of a client that guesses, and the login and logout endpoints.

Sessions are rows in the database (`dashboard_sessions`: the id's SHA-256, issued, expires
after SESSION, ended), so logging out ends one on the server, for every `serve` process and
across restarts. Wrong tokens (login form or Bearer) are counted per client address:
LOCKOUT.limit of them within LOCKOUT.window lock that client out for LOCKOUT.lock (429 with
Retry-After, whatever token it sends meanwhile).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dripper.clock import Clock
from dripper.store import Store
from dripper.store.queries import sessionrows
from dripper.web.dashboard.layout import HEADERS, render

if TYPE_CHECKING:
    from dripper.web.dashboard.pages import DashboardState

SESSION = timedelta(hours=12)  # a working day: long enough not to nag, short enough for a lost laptop
# 5 wrong tokens in 15 minutes lock a client out for 15 minutes: a person who mistyped waits a
# little; a guesser gets 480 guesses a day per address, nothing against a random token.
LOCKOUT = sessionrows.Lockout(limit=5, window=timedelta(minutes=15), lock=timedelta(minutes=15))
COOKIE = "dripper_dashboard"

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


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def safe_next(target: str) -> str:
    """Where to go after logging in: a dashboard path of this server, never elsewhere."""
    path, _, query = target.partition("?")
    if not re.fullmatch(r"/dashboard(/[A-Za-z0-9_\-/]*)?", path) or "//" in path or len(target) > 1000:
        return "/dashboard"
    return path + (f"?{query}" if query and not re.search(r"[\r\n\\]", query) else "")


# --- the pages and endpoints of logging in ---------------------------------------------------


def _state(request: Request) -> DashboardState:
    state: DashboardState = request.app.state.dashboard
    return state


def disabled(request: Request) -> Response:
    return render(request, "dashboard/disabled.html", "Dashboard disabled", status=403, nav=False)


def login_page(request: Request, target: str, *, status: int = 200, message: str = "") -> Response:
    response = render(
        request, "dashboard/login.html", "Log in", status=status, nav=False, error=message, next=safe_next(target)
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dripper dashboard"'
    return response


def refused(request: Request, attempt: Attempt, target: str) -> Response:
    """What a wrong token, or any token from a locked-out client, gets."""
    if attempt.outcome is Outcome.LOCKED:
        minutes = (attempt.retry_after + 59) // 60
        response = login_page(
            request,
            target,
            status=429,
            message="Too many wrong tokens from your address: try again "
            f"in {minutes} minute{'s' if minutes != 1 else ''}.",
        )
        response.headers["Retry-After"] = str(attempt.retry_after)
        return response
    return login_page(request, target, status=401, message="That token is not valid.")


def gate(request: Request) -> Response | None:
    """None when the request may see the page; else what to answer instead."""
    state = _state(request)
    if state.sessions is None or state.logins is None:
        return disabled(request)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    given = bearer(request)
    if given is not None:
        attempt = state.logins.check(client_address(request), given)
        return None if attempt.outcome is Outcome.RIGHT else refused(request, attempt, target)
    if state.sessions.valid(request.cookies.get(COOKIE)):
        return None
    ended = "Your session has ended: log in again." if COOKIE in request.cookies else ""
    return login_page(request, target, message=ended)


async def login(request: Request) -> Response:
    state = _state(request)
    if state.sessions is None or state.logins is None:
        return disabled(request)
    form = await request.form()
    given, target = form.get("token"), safe_next(str(form.get("next") or "/dashboard"))
    attempt = await run_in_threadpool(state.logins.check, client_address(request), given)
    if attempt.outcome is not Outcome.RIGHT:
        return refused(request, attempt, target)
    session = await run_in_threadpool(state.sessions.issue)
    response = RedirectResponse(target, status_code=303, headers=HEADERS)
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
    sessions = _state(request).sessions
    if sessions is not None:  # ended on the server: a copy of the cookie opens nothing any more
        await run_in_threadpool(sessions.end, request.cookies.get(COOKIE))
    response = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
    response.delete_cookie(
        COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


__all__ = [
    "COOKIE",
    "LOCKOUT",
    "SESSION",
    "Attempt",
    "Logins",
    "Outcome",
    "Sessions",
    "bearer",
    "client_address",
    "gate",
    "login",
    "logout",
    "safe_next",
    "same_token",
]
