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
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from dripper.campaign.model import CampaignFile
from dripper.channels.compose import safe_name
from dripper.channels.email.transports import Envelope, SendError, make_transport
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
        return bool(self.notify.forward_to or self.notify.webhook)

    def reply(self, result: Ingested, raw: bytes, at: datetime) -> list[str]:
        """Forward and/or post one reply; returns what was done, for the record."""
        done = []
        if self.notify.forward_to:
            done.append(self._forward(result, raw, at))
        if self.notify.webhook:
            done.append(self._post(result))
        return done

    def _forward(self, result: Ingested, raw: bytes, at: datetime) -> str:
        sender = self.config.sender
        message = EmailMessage(policy=SMTP)
        message["From"] = sender.from_
        message["To"] = self.notify.forward_to
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
            self.notify.forward_to or "",
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
        return f"forwarded to {self.notify.forward_to}"

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
