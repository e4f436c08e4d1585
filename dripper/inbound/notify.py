"""Telling the sales team about a person's reply: forwarded as an e-mail (through the
configured transport) and/or posted as JSON to a webhook (a CRM, a chat channel).
A failure is logged and never undoes what the reply did to the lead."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING

from dripper.campaign.model import CampaignFile
from dripper.channels.compose import safe_name
from dripper.channels.email.transports import Envelope, SendError, make_transport
from dripper.leads.records import Lead
from dripper.settings import Settings
from dripper.states import EventKind, InboundKind

if TYPE_CHECKING:  # ingest imports this module
    from dripper.inbound.ingest import Ingested

log = logging.getLogger("dripper.inbound")


class Notifier:
    def __init__(self, config: CampaignFile, settings: Settings):
        self.config = config
        self.settings = settings
        self.notify = config.inbound.notify

    @property
    def active(self) -> bool:
        # Named senders (senders:) hear of their own leads' replies, with no forward_to set.
        return bool(self.notify.forward_to or self.notify.webhook or self.config.senders)

    def owner_address(self, result: Ingested, lead: Lead | None) -> str | None:
        """Where the verified reply of a lead is told besides forward_to: the named identity
        its mail goes out from (chosen by its owner, or its campaign's `sender:`), at its
        `notify` address, else its Reply-To, else its From. None for the file's `sender:`."""
        if lead is None or result.lead is None:  # an unverified claim goes to forward_to only
            return None
        campaign = result.touch["campaign"] if result.touch else lead.campaign
        identity = self.config.sender_for(campaign, lead.owner)
        if not identity.key:
            return None
        return identity.notify or identity.reply_to or identity.address

    def reply(self, result: Ingested, raw: bytes, at: datetime, lead: Lead | None = None) -> list[str]:
        """Forward and/or post one reply; returns what was done, for the record. `lead`: the
        stored lead it is verified to come from, whose owner hears of it."""
        done = []
        recipients = [self.notify.forward_to, self.owner_address(result, lead)]
        for to in dict.fromkeys(r for r in recipients if r):
            done.append(self._forward(result, raw, at, to))
        if self.notify.webhook:
            done.append(self._post(result))
        return done

    def _forward(self, result: Ingested, raw: bytes, at: datetime, to: str) -> str:
        sender = self.config.sender
        message = EmailMessage(policy=SMTP)
        message["From"] = sender.from_
        message["To"] = to
        if result.lead is not None:
            message["Subject"] = f"Reply from {result.lead}: {result.touch['step'] if result.touch else 'lead'}"
            note = f"{result.lead} replied; their sequence is stopped. The reply is attached.\n"
        else:  # it proves nothing: a person decides (`dripper event EMAIL replied|unsubscribed`)
            # the event a person records if it is genuine
            event = EventKind.UNSUBSCRIBED if result.classified_as == InboundKind.UNSUBSCRIBE else EventKind.REPLIED
            message["Subject"] = f"Unverified {result.classified_as} claiming to be from {result.suspected_lead}"
            note = (
                f"This {result.classified_as} claims to be from {result.suspected_lead}, but it is no reply to our "
                f"mail and its sender is not authenticated, so it changed nothing ({result.reason}). If it is "
                f"genuine, record it with `dripper event {result.suspected_lead} "
                f"{event}`. It is attached.\n"
            )
        message["Date"] = format_datetime(at)
        message["Message-ID"] = make_msgid(domain=sender.domain)
        message["Auto-Submitted"] = "auto-generated"  # so nothing auto-replies to it in a loop
        message.set_content(note)
        # message/rfc822 may not be base64-encoded (RFC 2046): attach the parsed message.
        message.add_attachment(message_from_bytes(raw, policy=SMTP))
        transport = make_transport(self.settings.smtp_url, self.settings.outbox_dir, 1)
        envelope = Envelope(
            sender.address,
            parseaddr(to)[1] or to,
            message.as_bytes(),
            # the forward's own Message-ID: two replies never share a file
            safe_name(
                "reply-from", result.lead or result.suspected_lead or "unknown", str(message["Message-ID"]).strip("<>")
            ),
        )

        async def send() -> None:
            await transport.open()
            try:
                await transport.send(envelope)
            finally:
                await transport.close()

        try:
            asyncio.run(send())
        except (SendError, OSError) as exc:
            log.error("forwarding the reply from %s failed: %s", result.lead, exc)
            return f"forward failed: {exc}"
        return f"forwarded to {to}"

    def _post(self, result: Ingested) -> str:
        import httpx

        try:
            response = httpx.post(self.notify.webhook or "", json=result.as_json(), timeout=10.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error("posting the reply from %s to the webhook failed: %s", result.lead, exc)
            return f"webhook failed: {exc}"
        return f"posted to webhook ({response.status_code})"


__all__ = ["Notifier"]
