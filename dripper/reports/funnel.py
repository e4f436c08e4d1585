"""What the store says, shaped for people and scripts: funnel counts, a lead's plan."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from dripper.campaign import variants
from dripper.campaign.model import FUNNEL_STAGES, CampaignFile, Step
from dripper.campaign.timing import Duration
from dripper.leads import postal
from dripper.leads.records import LEAD_COLUMNS, Lead
from dripper.planning import track
from dripper.planning.planner import Planner, stop_reason
from dripper.reports import abtest, clicks, winners
from dripper.states import CHANNELS, REPLANNABLE, Reason, TouchState
from dripper.store import STATES
from dripper.store.queries import abrows, callrows, leadrows, printrows, reportrows
from dripper.store.queries import touchrows as touch_q

# The outcome figures of a step, each with the name of its rate.
FIGURES = tuple(reportrows.OUTCOMES.values())  # replies, conversions, unsubscribes, bounces, complaints
RATES = {
    "replies": "reply",
    "conversions": "conversion",
    "unsubscribes": "unsubscribe",
    "bounces": "bounce",
    "complaints": "complaint",
}
DEFAULT_WINDOW = Duration(days=30)  # reporting.attribution_window when there is no campaigns file


def funnel(conn: Connection, config: CampaignFile | None = None) -> dict[str, Any]:
    """`{"campaigns": {NAME: {"steps": {STEP: {state: n, ...}}}}}`, every state present,
    steps in campaign order (steps of the current file first, then any others seen).

    Tracks are planned one touch ahead, so the steps a lead's track has yet to reach have
    no rows: with the campaigns file, they are counted here as what they will be,
    `planned` (or `suppressed`, where the lead stopped the track).

    With them, what came of the touches: per step the leads whose track reached it
    (`enrolled`), the replies, conversions, unsubscribes, bounces and complaints counted
    for its touches and their `rates` per touch sent; per campaign the leads that entered
    one of its tracks, the outcomes no touch could be found for (`unattributed`), the
    movements between stages, the time from first touch to conversion, and the leads in
    each stage now (`funnel`)."""
    counts = touch_q.counts_by_step(conn)
    # Letters waiting for the machine's libraries are counted with their reason: the report
    # is where a marketer looks when letters do not go out.
    reasons = touch_q.reasons_by_step(conn, waiting=(Reason.LETTERS_UNAVAILABLE,))
    reached = _reached(counts, reasons)  # from the rows alone, before the steps to come are added
    if config is not None:
        _add_upcoming(counts, reasons, touch_q.upcoming_counts(conn, _track_orders(Planner(config))))
    window = config.reporting.attribution_window if config else DEFAULT_WINDOW
    with reportrows.without_jit(conn):
        results = reportrows.outcomes(conn, window)
        variant_sent = reportrows.sent_by_variant(conn)
        decided = abrows.winners(conn)
        enrolled = reportrows.enrolled_by_campaign(conn)
        moves = reportrows.movements(conn)
        standing = reportrows.leads_by_stage(conn)
    out: dict[str, Any] = {}
    names = list(config.campaigns) if config else []
    others = [*counts, *enrolled, *(c for c, _ in standing), *(c for c, _ in results.unattributed)]
    names += [n for n in dict.fromkeys(others) if n not in names]
    for name in names:
        steps: dict[str, Any] = {}
        order: list[str] = []
        if config and name in config.campaigns:
            order = [step.id for track in config.campaigns[name].stages.values() for step in track]
        seen = counts.get(name, {})
        order += [s for s in seen if s not in order]
        for step in order:
            row: dict[str, Any] = dict(seen.get(step, dict.fromkeys(STATES, 0)))
            row["total"] = sum(row[s] for s in STATES)
            row["reasons"] = {r: n for (c, s, r), n in reasons.items() if c == name and s == step}
            row["enrolled"] = reached.get((name, step), 0)
            for kind, figure in reportrows.OUTCOMES.items():
                row[figure] = results.by_step.get((name, step, kind), 0)
            row["rates"] = _rates(row)
            written = _step_of(config, name, step)
            shown = _variant_names(written, name, step, variant_sent)
            if shown:
                row["variants"] = {
                    variant: _variant_row(variant_sent.get((name, step, variant), 0), results, (name, step, variant))
                    for variant in shown
                }
                row["ab_test"] = _ab_test(config, written, row["variants"], decided, name)
            if written is not None and written.when is not None:  # its skips are reasons["condition"]
                row["when"] = written.when
            steps[step] = row
        totals: dict[str, Any] = {s: sum(v[s] for v in steps.values()) for s in (*STATES, *FIGURES)}
        totals["rates"] = _rates(totals)
        spans = results.time_to_conversion.get(name)
        out[name] = {
            "steps": steps,
            "totals": totals,
            "enrolled": enrolled.get(name, 0),
            "unattributed": {
                figure: results.unattributed.get((name, kind), 0) for kind, figure in reportrows.OUTCOMES.items()
            },
            "movements": [
                {"from": f, "to": t, "count": n}
                for (c, f, t), n in sorted(moves.items(), key=lambda item: (-item[1], str(item[0][1]), item[0][2]))
                if c == name
            ],
            "time_to_conversion": {
                "count": spans.leads if spans else 0,
                "median_days": _round(spans.median_days) if spans else None,
                "p90_days": _round(spans.p90_days) if spans else None,
            },
            "funnel": _stages_now(config, name, standing),
        }
    data = {"campaigns": out, "attribution_window": str(window)}
    clicks.add_clicks(conn, data, config)  # per step and per link (reports/clicks.py)
    return data


def _reached(
    counts: dict[str, dict[str, dict[str, int]]], reasons: dict[tuple[str, str, str], int]
) -> dict[tuple[str, str], int]:
    """(campaign, step) -> leads whose track reached the step: its rows (one a lead), less
    those dripper closed itself because the lead left the track first (`REPLANNABLE`
    reasons, which only `skipped` rows carry)."""
    out = {}
    for campaign, steps in counts.items():
        for step, row in steps.items():
            left = sum(reasons.get((campaign, step, reason), 0) for reason in REPLANNABLE)
            out[(campaign, step)] = sum(row.values()) - left
    return out


def _step_of(config: CampaignFile | None, campaign: str, step_id: str) -> Step | None:
    found = config.campaigns[campaign].step(step_id) if config and campaign in config.campaigns else None
    return found[1] if found else None


def _variant_names(
    step: Step | None, campaign: str, step_id: str, sent: Mapping[tuple[str, str, str], int]
) -> list[str]:
    """The step's A/B variants: those campaigns.yaml names, then any others touches were
    sent with (a variant dropped since keeps its history)."""
    written = variants.names(step.variants) if step is not None else []
    seen = sorted(v for c, s, v in sent if (c, s) == (campaign, step_id) and v not in written)
    return written + seen


def _variant_row(sent: int, results: reportrows.Outcomes, key: tuple[str, str, str]) -> dict[str, Any]:
    """One variant's sends, outcomes counted for them (within the attribution window), rates."""
    row: dict[str, Any] = {TouchState.SENT.value: sent}
    for kind, figure in reportrows.OUTCOMES.items():
        row[figure] = results.by_variant.get((*key, kind), 0)
    row["rates"] = _rates(row)
    return row


def _ab_test(
    config: CampaignFile | None,
    step: Step | None,
    figures: Mapping[str, Any],
    decided: Mapping[tuple[str, str], str],
    campaign: str,
) -> dict[str, Any]:
    """The significance test between the variants (dripper/reports/abtest.py): on the
    step's auto_winner metric and confidence, else reporting.variant_metric and
    reporting.variant_confidence (the test auto_winner decides by is the one shown)."""
    rule = step.auto_winner if step is not None else None
    metric = rule.metric if rule else config.reporting.variant_metric if config else "replies"
    confidence = rule.confidence if rule else config.reporting.variant_confidence if config else 0.95
    arms = [abtest.Arm(name, row[TouchState.SENT], row[metric]) for name, row in figures.items()]
    out = abtest.compare(arms, metric, confidence).as_dict()
    auto = winners.auto_winner(step, campaign, decided) if step is not None else None
    out["winner"] = (step.winner if step is not None else None) or auto
    out["decided_by"] = "auto_winner" if auto else "campaigns.yaml" if out["winner"] else None
    return out


def _rates(row: Mapping[str, Any]) -> dict[str, float | None]:
    """Each outcome per touch sent (a fraction; None when nothing was sent)."""
    sent = row[TouchState.SENT]
    return {rate: round(row[figure] / sent, 4) if sent else None for figure, rate in RATES.items()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _stages_now(config: CampaignFile | None, campaign: str, standing: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Leads in each stage of the campaign now: the stages it has a track for and any a
    lead is in, in funnel order."""
    here = {stage: n for (c, stage), n in standing.items() if c == campaign}
    known = config.stages if config else FUNNEL_STAGES
    tracks = list(config.campaigns[campaign].stages) if config and campaign in config.campaigns else []
    stages = [s for s in known if s in here or s in tracks] + sorted(s for s in here if s not in known)
    return {stage: here.get(stage, 0) for stage in stages}


# Tracks are put in sending order by the due times of a lead entering at this instant; a
# lead's own (time zone, holidays) can only differ where two steps fall together.
_ORDER_FROM = datetime(2026, 1, 5, tzinfo=UTC)


def _track_orders(planner: Planner) -> dict[tuple[str, str], list[str]]:
    return {
        (name, stage): [step.id for step, _ in planner.dues(name, stage, _ORDER_FROM)]
        for name, campaign in planner.config.campaigns.items()
        for stage in campaign.stages
    }


def _add_upcoming(
    counts: dict[str, dict[str, dict[str, int]]], reasons: dict[tuple[str, str, str], int], upcoming: touch_q.Upcoming
) -> None:
    for (campaign, step, stopped), n in upcoming.ahead.items():
        row = counts.setdefault(campaign, {}).setdefault(step, dict.fromkeys(STATES, 0))
        row[TouchState.SUPPRESSED if stopped else TouchState.PLANNED] += n
        if stopped:
            reasons[(campaign, step, stopped)] = reasons.get((campaign, step, stopped), 0) + n
    for (campaign, step, reason), n in upcoming.reopened.items():  # counted as to come (above), not skipped
        counts[campaign][step][TouchState.SKIPPED] -= n
        reasons[(campaign, step, reason)] -= n
        if not reasons[(campaign, step, reason)]:
            del reasons[(campaign, step, reason)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_plan(conn: Connection, lead: Lead, planner: Planner | None = None) -> dict[str, Any]:
    """A lead's past and upcoming touches, with states and reasons (`dripper plan --json`).

    With the planner, the rest of the lead's track is listed too: the steps not planned
    yet (a track is planned one touch ahead), as they will be."""
    info: dict[str, Any] = {key: getattr(lead, key) for key in (*LEAD_COLUMNS, "attrs")}
    info["stage_entered_at"] = _iso(lead.stage_entered_at)
    info["consent_at"] = _iso(lead.consent_at)
    info["status"] = lead.status
    for kind in ("converted", "replied", "unsubscribed", "bounced", "complained"):
        info[f"{kind}_at"] = _iso(lead.stopped_at(kind))
    address = postal.check(lead.for_templates("UTC"))
    info["postal_address"] = {
        "complete": address.complete,
        "country": address.country,
        "problem": None if address.complete else address.describe(),
    }
    rows = touch_q.for_lead(conn, lead.id)
    papers = printrows.for_touches(conn, [t["id"] for t in rows])  # only letters have print rows
    calls = {c["touch_id"]: c for c in callrows.listing(conn, lead_id=lead.id)}
    ahead = upcoming_rows(planner, lead, rows) if planner is not None else []
    decided = abrows.winners(conn)
    replaced = {(t["campaign"], t["step_id"]) for t in ahead}
    touches = []
    for t in sorted(
        [r for r in rows if (r["campaign"], r["step_id"]) not in replaced] + ahead, key=lambda r: r["due_at"]
    ):
        touch = {
            "campaign": t["campaign"],
            "step": t["step_id"],
            "stage": t["stage"],
            "channel": t["channel"],
            "kind": t["kind"],
            "due": _iso(t["due_at"]),
            "state": t["state"],
            "reason": t["reason"],
            "sent_at": _iso(t["sent_at"]),
            "message_id": t["message_id"],
            "attempts": t["attempts"],
            "variant": t.get("variant") or _variant_to_come(planner, lead, t, decided),
        }
        if t["id"] in papers:
            touch["batch"] = papers[t["id"]]["batch_id"]
            touch["mailed_at"] = _iso(papers[t["id"]]["mailed_at"])
        if t["id"] in calls:
            touch["call"] = {
                "day": calls[t["id"]]["day"],
                "owner": calls[t["id"]]["owner"],
                "outcome": calls[t["id"]]["outcome"],
            }
        touches.append(touch)
    stored_events = leadrows.events_for(conn, lead.id)
    if planner is not None:
        _add_conditions(planner, lead, touches, stored_events)
    events = [
        {"kind": e["kind"], "at": _iso(e["at"]), "source": e["source"], "detail": e["detail"]} for e in stored_events
    ]
    return {"lead": info, "touches": touches, "events": events}


def _add_conditions(planner: Planner, lead: Lead, touches: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """`when` on each touch whose step has a condition, and for one still to come `applies`:
    whether the condition holds for the lead now (it is evaluated again when the touch
    falls due; null when it cannot be evaluated for this lead)."""
    from dripper.campaign import conditions

    history: conditions.History | None = None
    for touch in touches:
        campaign = planner.config.campaigns.get(touch["campaign"])
        found = campaign.step(touch["step"]) if campaign is not None else None
        if found is None or found[1].when is None:
            continue
        touch["when"] = found[1].when
        if touch["state"] not in ("planned", "sending"):
            continue
        history = history or conditions.History.of(events)
        subject = conditions.subject_for(planner.config, touch["campaign"], lead, history)
        try:
            touch["applies"] = conditions.holds(found[1].when, subject)
        except conditions.ConditionError:
            touch["applies"] = None


def _variant_to_come(
    planner: Planner | None, lead: Lead, row: Mapping[str, Any], decided: Mapping[tuple[str, str], str]
) -> str | None:
    """The A/B variant a touch not sent yet will be sent with, as things stand (the choice
    is a function of lead and step: the tick will make the same one)."""
    if planner is None or row["state"] not in (TouchState.PLANNED, TouchState.SENDING):
        return None
    campaign = planner.config.campaigns.get(row["campaign"])
    found = campaign.step(row["step_id"]) if campaign else None
    if found is None:
        return None
    return winners.auto_winner(found[1], row["campaign"], decided) or variants.variant_for(
        lead.email, row["campaign"], found[1]
    )


def upcoming_rows(planner: Planner, lead: Lead, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps of the lead's track still to come (no rows yet), shaped like stored rows;
    `rows` are the lead's touch rows (`plan`, and pages that list what is due soon)."""
    campaign = planner.config.campaigns.get(lead.campaign)
    if campaign is None:
        return []
    known = {
        r["step_id"]: track.Known(r["state"], r["reason"], r["planned_at"])
        for r in rows
        if r["campaign"] == lead.campaign
    }
    since = lead.entered_at
    stopped_now = stop_reason(campaign.stop_on, lead, since, campaign.name)
    held = [r["due_at"] for r in rows if r["campaign"] == campaign.name and r["state"] == TouchState.PLANNED]
    out = []
    for item in track.upcoming(planner.track_of(lead), known, since, max(held) if held else None):
        reason = item.suppressed_by or stopped_now
        state = TouchState.SUPPRESSED if reason else TouchState.SKIPPED if item.missed else TouchState.PLANNED
        out.append(
            {
                "id": None,
                "campaign": campaign.name,
                "step_id": item.step.id,
                "stage": lead.stage,
                "channel": item.step.channel,
                "kind": item.step.kind,
                "due_at": item.due,
                "state": state,
                "reason": reason or (Reason.MISSED if item.missed else None),
                "sent_at": None,
                "message_id": None,
                "attempts": 0,
            }
        )
    return out


def weekly_sends(conn: Connection) -> dict[str, dict[str, Any]]:
    """Touches sent per week, by channel, per campaign: `{NAME: {"weeks": [Monday, ...],
    "channels": {CHANNEL: [n a week, ...]}}}`, every week from the first send to the last
    (weeks start on Monday, UTC)."""
    counts = reportrows.sent_by_week(conn)
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(campaign for campaign, _, _ in counts):
        mine = {(week, channel): n for (campaign, week, channel), n in counts.items() if campaign == name}
        first, last = min(week for week, _ in mine), max(week for week, _ in mine)
        weeks = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
        channels = sorted(
            {channel for _, channel in mine}, key=lambda c: (CHANNELS.index(c) if c in CHANNELS else len(CHANNELS), c)
        )
        out[name] = {
            "weeks": [week.isoformat() for week in weeks],
            "channels": {channel: [mine.get((week, channel), 0) for week in weeks] for channel in channels},
        }
    return out


def letters_skipped_because(plan: Mapping[str, Any]) -> str | None:
    """Why the planned letters of a `lead_plan` will be skipped (no_postal_address): its
    postal address's problem; None when it has none or no letter is planned."""
    address = plan["lead"]["postal_address"]
    if address["complete"] or not any(t["channel"] == "letter" and t["state"] == "planned" for t in plan["touches"]):
        return None
    return str(address["problem"])
