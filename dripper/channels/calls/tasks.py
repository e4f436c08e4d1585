"""Phone-call tasks for the sales team: a `channel: call` step that falls due becomes a
task for its business day, with talking points rendered from the step's template; the
caller records the outcome with `dripper event EMAIL called --outcome …`.

Outcomes act on the lead: `converted` is the converted event; `not_interested` stops the
campaign the call belonged to (like "stop this campaign" on the preference page), so the
lead stays a lead for later campaigns; reached, voicemail and no_answer change nothing.
When the lead stops (it converts, unsubscribes, bounces, replies…: see `leads.events`) its
open tasks are closed as `cancelled`, the stop's reason as their note.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from dripper import csvsafe
from dripper.channels.base import business_day
from dripper.channels.letters.layout import write_atomic
from dripper.leads.events import apply_event, opt_out
from dripper.leads.records import Lead, full_name
from dripper.planning.planner import Planner
from dripper.states import EventKind
from dripper.store import Store
from dripper.store.queries import callrows, leadrows
from dripper.store.queries.callrows import CANCELLED, OUTCOMES

CSV_COLUMNS = (
    "day",
    "owner",
    "email",
    "name",
    "company",
    "phone",
    "campaign",
    "step",
    "outcome",
    "note",
    "talking_points",
    "due",
    "overdue",
)


@dataclass(frozen=True)
class OutcomeResult:
    call: Mapping[Any, Any] | None  # the task the outcome was recorded on (None: no open task)
    suppressed: int


def rows_for_table(tasks: Sequence[Mapping[Any, Any]], timezone: str) -> list[dict[str, str]]:
    """The tasks as the call list shows them. `due` is the business day (in `timezone`,
    the office's, as `day` is) the call step fell due; an open task listed on a later day
    (the worker was down, the catch-up rule kept the call) is `overdue`."""
    out = []
    for task in tasks:
        attrs = task.get("attrs") or {}
        due = business_day(task["due_at"], timezone)
        out.append(
            {
                "day": task["day"],
                "owner": task["owner"],
                "email": task["email"],
                "name": full_name(task["first_name"], task["last_name"]),
                "company": task["company"],
                "phone": str(attrs.get("phone") or attrs.get("telephone") or ""),
                "campaign": task["campaign"],
                "step": task["step_id"],
                "outcome": task["outcome"] or "",
                "note": task["note"] or "",
                "talking_points": task["talking_points"],
                "due": due,
                "overdue": "yes" if task["outcome"] is None and due < task["day"] else "",
            }
        )
    return out


def to_csv(tasks: Sequence[Mapping[Any, Any]], timezone: str) -> str:
    buffer = io.StringIO(newline="")
    writer = csvsafe.DictWriter(buffer, fieldnames=CSV_COLUMNS)  # names and notes are lead data
    writer.writeheader()
    writer.writerows(rows_for_table(tasks, timezone))
    return buffer.getvalue()


def export_day(store: Store, day: str, folder: Path, timezone: str) -> Path:
    """calls/DAY.csv: the day's call list, rewritten from the database (so a resend never
    lists a call twice)."""
    with store.begin() as conn:
        tasks = callrows.listing(conn, day=day)
    return write_atomic(folder / f"{day}.csv", to_csv(tasks, timezone).encode("utf-8"))


def record_outcome(
    conn: Connection,
    planner: Planner,
    lead: Lead,
    outcome: str,
    at: datetime,
    *,
    note: str | None = None,
    campaign: str | None = None,
    source: str = "cli",
) -> OutcomeResult:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    task = callrows.latest_open(conn, lead.id, campaign)
    if task is not None:
        callrows.record_outcome(conn, task["touch_id"], outcome, note, at)
    detail = {
        "outcome": outcome,
        **({"note": note} if note else {}),
        **({"campaign": task["campaign"], "step": task["step_id"]} if task else {}),
    }
    leadrows.record_event(conn, lead.id, EventKind.CALLED, at, source, detail)
    suppressed = 0
    if outcome == "converted":
        suppressed = apply_event(
            conn, planner, lead, EventKind.CONVERTED, at, source=source, detail={"via": "call"}
        ).suppressed
    elif outcome == "not_interested":
        suppressed = opt_out(conn, lead, task["campaign"] if task else campaign or lead.campaign, at, source=source)
    return OutcomeResult(task, suppressed)


__all__ = [
    "CANCELLED",
    "CSV_COLUMNS",
    "OUTCOMES",
    "OutcomeResult",
    "business_day",
    "export_day",
    "record_outcome",
    "rows_for_table",
    "to_csv",
]
