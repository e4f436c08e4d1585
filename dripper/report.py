"""What the store says, shaped for people and scripts: funnel counts, a lead's plan."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import Connection

from dripper import postal, track
from dripper.campaigns import CampaignFile
from dripper.planner import Planner, stop_reason
from dripper.render import LeadView
from dripper.store import STATES
from dripper.store import callrows, leadrows, printrows
from dripper.store import touchrows as touch_q


def funnel(conn: Connection, config: CampaignFile | None = None) -> dict[str, Any]:
    """`{"campaigns": {NAME: {"steps": {STEP: {state: n, ...}}}}}`, every state present,
    steps in campaign order (steps of the current file first, then any others seen).

    Tracks are planned one touch ahead, so the steps a lead's track has yet to reach have
    no rows: with the campaigns file, they are counted here as what they will be,
    `planned` (or `suppressed`, where the lead stopped the track)."""
    counts = touch_q.counts_by_step(conn)
    reasons = touch_q.reasons_by_step(conn)
    if config is not None:
        _add_upcoming(counts, reasons, touch_q.upcoming_counts(conn, _track_orders(Planner(config))))
    out: dict[str, Any] = {}
    names = list(config.campaigns) if config else []
    names += [n for n in counts if n not in names]
    for name in names:
        steps: dict[str, Any] = {}
        order: list[str] = []
        if config and name in config.campaigns:
            order = [step.id for track in config.campaigns[name].stages.values() for step in track]
        seen = counts.get(name, {})
        order += [s for s in seen if s not in order]
        for step in order:
            row = dict(seen.get(step, {s: 0 for s in STATES}))
            row["total"] = sum(row[s] for s in STATES)
            row["reasons"] = {r: n for (c, s, r), n in reasons.items() if c == name and s == step}
            steps[step] = row
        out[name] = {"steps": steps, "totals": {s: sum(v[s] for v in steps.values()) for s in STATES}}
    return {"campaigns": out}


# Tracks are put in sending order by the due times of a lead entering at this instant; a
# lead's own (time zone, holidays) can only differ where two steps fall together.
_ORDER_FROM = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _track_orders(planner: Planner) -> dict[tuple[str, str], list[str]]:
    return {(name, stage): [step.id for step, _ in planner.dues(name, stage, _ORDER_FROM)]
            for name, campaign in planner.config.campaigns.items() for stage in campaign.stages}


def _add_upcoming(counts: dict[str, dict[str, dict[str, int]]], reasons: dict[tuple[str, str, str], int],
                  upcoming: touch_q.Upcoming) -> None:
    for (campaign, step, stopped), n in upcoming.ahead.items():
        row = counts.setdefault(campaign, {}).setdefault(step, {s: 0 for s in STATES})
        row["suppressed" if stopped else "planned"] += n
        if stopped:
            reasons[(campaign, step, stopped)] = reasons.get((campaign, step, stopped), 0) + n
    for (campaign, step, reason), n in upcoming.reopened.items():  # counted as to come (above), not skipped
        counts[campaign][step]["skipped"] -= n
        reasons[(campaign, step, reason)] -= n
        if not reasons[(campaign, step, reason)]:
            del reasons[(campaign, step, reason)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_status(lead: Mapping[str, Any]) -> str:
    for kind in ("complained", "unsubscribed", "bounced", "converted", "replied"):
        if lead.get(f"{kind}_at"):
            return kind
    return "active"


def lead_plan(conn: Connection, lead: Mapping[str, Any], planner: Planner | None = None) -> dict[str, Any]:
    """A lead's past and upcoming touches, with states and reasons (`dripper plan --json`).

    With the planner, the rest of the lead's track is listed too: the steps not planned
    yet (a track is planned one touch ahead), as they will be."""
    info = {
        key: lead[key]
        for key in ("email", "first_name", "last_name", "company", "stage", "campaign", "timezone",
                    "address_line1", "address_line2", "city", "region", "postal_code", "country", "attrs")
    }
    info["stage_entered_at"] = _iso(lead["stage_entered_at"])
    info["status"] = lead_status(lead)
    for kind in ("converted", "replied", "unsubscribed", "bounced", "complained"):
        info[f"{kind}_at"] = _iso(lead[f"{kind}_at"])
    address = postal.check(LeadView.from_row(lead, "UTC"))
    info["postal_address"] = {"complete": address.complete, "country": address.country,
                              "problem": None if address.complete else address.describe()}
    rows = touch_q.for_lead(conn, lead["id"])
    papers = printrows.for_touches(conn, [t["id"] for t in rows if t["channel"] == "letter"])
    calls = {c["touch_id"]: c for c in callrows.listing(conn, lead_id=lead["id"])}
    ahead = _upcoming(planner, lead, rows) if planner is not None else []
    replaced = {(t["campaign"], t["step_id"]) for t in ahead}
    touches = []
    for t in sorted([r for r in rows if (r["campaign"], r["step_id"]) not in replaced] + ahead,
                    key=lambda r: r["due_at"]):
        touch = {
            "campaign": t["campaign"], "step": t["step_id"], "stage": t["stage"], "channel": t["channel"],
            "kind": t["kind"], "due": _iso(t["due_at"]), "state": t["state"], "reason": t["reason"],
            "sent_at": _iso(t["sent_at"]), "message_id": t["message_id"], "attempts": t["attempts"],
        }
        if t["id"] in papers:
            touch["batch"] = papers[t["id"]]["batch_id"]
            touch["mailed_at"] = _iso(papers[t["id"]]["mailed_at"])
        if t["id"] in calls:
            touch["call"] = {"day": calls[t["id"]]["day"], "owner": calls[t["id"]]["owner"],
                             "outcome": calls[t["id"]]["outcome"]}
        touches.append(touch)
    events = [
        {"kind": e["kind"], "at": _iso(e["at"]), "source": e["source"], "detail": e["detail"]}
        for e in leadrows.events_for(conn, lead["id"])
    ]
    return {"lead": info, "touches": touches, "events": events}


def _upcoming(planner: Planner, lead: Mapping[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows, shaped like stored ones, for the steps the lead's track has yet to reach."""
    campaign = planner.config.campaigns.get(lead["campaign"])
    if campaign is None:
        return []
    known = {r["step_id"]: track.Known(r["state"], r["reason"], r["planned_at"]) for r in rows
             if r["campaign"] == lead["campaign"]}
    since = lead["stage_entered_at"]
    stopped_now = stop_reason(campaign.stop_on, lead, since, campaign.name)
    held = [r["due_at"] for r in rows if r["campaign"] == campaign.name and r["state"] == "planned"]
    out = []
    for item in track.upcoming(planner.track_of(lead), known, since, max(held) if held else None):
        reason = item.suppressed_by or stopped_now
        state = "suppressed" if reason else "skipped" if item.missed else "planned"
        out.append({"id": None, "campaign": campaign.name, "step_id": item.step.id, "stage": lead["stage"],
                    "channel": item.step.channel, "kind": item.step.kind, "due_at": item.due, "state": state,
                    "reason": reason or ("missed" if item.missed else None), "sent_at": None, "message_id": None,
                    "attempts": 0})
    return out


def html_report(data: dict[str, Any], generated: datetime) -> str:
    """A self-contained page (no network needed) with the funnel tables."""
    from html import escape

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>dripper report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}"
        "th{background:#f4f4f4}.bar{background:#4a7;height:10px;display:inline-block}",
        "</style></head><body>",
        f"<h1>dripper report</h1><p>Generated {escape(generated.isoformat(timespec='seconds'))}</p>",
    ]
    for name, campaign in data["campaigns"].items():
        parts.append(f"<h2>{escape(name)}</h2><table><tr><th>step</th>")
        parts += [f"<th>{s}</th>" for s in STATES]
        parts.append("<th>sent</th></tr>")
        peak = max([row["sent"] for row in campaign["steps"].values()] + [1])
        for step, row in campaign["steps"].items():
            parts.append(f"<tr><td>{escape(step)}</td>")
            parts += [f"<td>{row[s]}</td>" for s in STATES]
            parts.append(f"<td style='text-align:left'><span class='bar' style='width:{120 * row['sent'] // peak}px'></span></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
