"""A call step as `dripper preview` shows it: its talking points, and for --open a page
with who to call."""

from __future__ import annotations

from dripper.campaign.model import Campaign, Step
from dripper.campaign.templates import LeadView
from dripper.channels.base import Preview, PreviewRequest
from dripper.pages import render


def call_page(view: LeadView, campaign: Campaign, step: Step, notes: str, note: str) -> str:
    """A call step's talking points, with who to call, as a simple page."""
    phone = str(view.attrs.get("phone") or view.attrs.get("telephone") or "") if view.attrs else ""
    owner = view.owner
    who = view.full_name or view.email
    details = [
        ("Lead", f"{who} <{view.email}>" if view.full_name else view.email),
        ("Company", view.company),
        ("Phone", phone),
        ("Owner", owner),
        ("Campaign", campaign.name),
        ("Step", f"{step.id} ({step.kind})"),
    ]
    return render(
        "previews/call.html",
        title=f"Call {who}: {step.id}",
        details=[(label, value) for label, value in details if value],
        points=notes.strip(),
        note=note,
    )


def preview(request: PreviewRequest, fmt: str) -> Preview:
    """Every format of a call step is its talking points."""
    return Preview(request.composer.call_notes(request.view, request.campaign, request.step, request.now))


def page(request: PreviewRequest) -> bytes:
    notes = preview(request, "text").text
    note = "A preview: the talking points as `dripper calls` lists them when the call is due."
    return call_page(request.view, request.campaign, request.step, notes, note).encode("utf-8")


__all__ = ["call_page", "page", "preview"]
