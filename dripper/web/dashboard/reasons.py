"""What each reason of a touch means, as the README's table of states says it: the one
place the dashboard's pages read it from."""

from __future__ import annotations

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
# Reasons that carry a detail after the colon (`smtp_retry: 451 …`): meant by their prefix.
REASON_PREFIXES = {
    "smtp_retry": "the SMTP server asked to try again later",
    "smtp_error": "the SMTP server refused it for good",
    "render_error": "a template failed for this lead",
    "letters_unavailable": "this machine cannot print letters yet (Pango is missing: `dripper check` says what "
    "to install); the letter waits and goes out once it is installed",
}


def meaning(reason: str | None) -> str:
    """What a reason means, or "" for one nobody wrote down."""
    if not reason:
        return ""
    return REASONS.get(reason) or REASON_PREFIXES.get(reason.split(":", 1)[0].strip(), "")


__all__ = ["REASONS", "REASON_PREFIXES", "meaning"]
