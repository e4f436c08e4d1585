"""The read-only dashboard of `dripper serve`: what the campaigns did, what is due, a lead's
timeline, the call list. Server-rendered HTML (templates/dashboard/) with inline CSS and
SVG charts (`dripper.reports.charts`): no script, no file from anywhere else.

- GET  /dashboard              campaigns and their steps with their counts, what is due in
                               the next 7 days, the last events
- GET  /dashboard/leads?q=     leads by e-mail prefix, name or company
- GET  /dashboard/leads/{id}   a lead and its timeline: sent, next, skipped and why, events
- GET  /dashboard/calls        call tasks by day and owner
- POST /dashboard/login        the token (form field `token`) -> a session cookie
- POST /dashboard/logout       ends the session

Protection: DRIPPER_DASHBOARD_TOKEN. Unset, the dashboard is off (403). Set, a page wants
either `Authorization: Bearer TOKEN` (scripts) or the session cookie that logging in with
the token sets: a random session id, HttpOnly, SameSite=Strict, scoped to /dashboard (see
`auth`: sessions and the lockout of guessers).

The pages read only. What writes to the database here: logging in and out (the session
rows) and wrong tokens (the failed-login counts).

Modules: `auth` (login, sessions, lockout), `pages` (endpoints and their templates'
context), `due` (what is due soon), `layout` (times, headers, rendering), `reasons` (what
each reason means, read from `dripper.states.Reason`). The queries are in `dripper.store.queries.dashrows`.
"""

from __future__ import annotations

from dripper.web.dashboard.auth import (
    COOKIE,
    LOCKOUT,
    SESSION,
    Attempt,
    Logins,
    Outcome,
    Sessions,
    client_address,
    safe_next,
    same_token,
)
from dripper.web.dashboard.due import DueSoon, due_soon, later_cutoffs
from dripper.web.dashboard.layout import Layout
from dripper.web.dashboard.pages import BadInput, DashboardState, dashboard_routes, dashboard_state
from dripper.web.dashboard.reasons import meaning

__all__ = [
    "COOKIE",
    "LOCKOUT",
    "SESSION",
    "Attempt",
    "BadInput",
    "DashboardState",
    "DueSoon",
    "Layout",
    "Logins",
    "Outcome",
    "Sessions",
    "client_address",
    "dashboard_routes",
    "dashboard_state",
    "due_soon",
    "later_cutoffs",
    "meaning",
    "safe_next",
    "same_token",
]
