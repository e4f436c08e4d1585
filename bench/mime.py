"""MIME assembly per message: stdlib EmailMessage vs dripper.message.build_email, same run.

python -m bench.mime [N]
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from bench._common import count_argument, timed
from dripper.campaign.model import Sender
from dripper.campaign.templates import LeadView, RenderedEmail
from dripper.channels.email.mime import build_email


def main(n: int = 3000) -> None:
    sender = Sender.model_validate(
        {
            "from": "Acme Sales <sales@acme.example>",
            "reply_to": "sales@acme.example",
            "postal_address": "Acme Inc., 1 Main St, Springfield, IL 62701, USA",
        }
    )
    html = (
        "<html><body>"
        + "<p style='color:#222'>Hello Zoë, a paragraph of text about valves.</p>" * 20
        + "</body></html>"
    )
    text = "Hello Zoë,\n\n" + "A paragraph of text about valves.\n" * 20
    leads = [
        LeadView(
            id=i,
            email=f"lead{i}@example.com",
            first_name="Zoë",
            last_name=f"Müller{i}",
            company="",
            stage="s",
            campaign="c",
            timezone="UTC",
        )
        for i in range(n)
    ]
    now = datetime.now(UTC)

    def stdlib(lead: LeadView) -> bytes:
        msg = EmailMessage(policy=SMTP)
        msg["From"] = sender.from_
        msg["To"] = Address(display_name=lead.full_name, addr_spec=lead.email)
        msg["Reply-To"] = sender.reply_to
        msg["Subject"] = "Your stainless valves information pack"
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<{lead.id}@acme.example>"
        msg["List-Unsubscribe"] = f"<https://acme.example/u/{lead.id}>, <mailto:sales@acme.example>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text, charset="utf-8", cte="quoted-printable")
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        return msg.as_bytes()

    def ours(lead: LeadView) -> bytes:
        rendered = RenderedEmail("Your stainless valves information pack", html, text)
        return build_email(
            sender,
            lead,
            rendered,
            msgid=f"<{lead.id}@acme.example>",
            date=now,
            unsubscribe=f"<https://acme.example/u/{lead.id}>, <mailto:sales@acme.example>",
        )

    slow, fast = timed(stdlib, leads), timed(ours, leads)
    print(f"messages: {n}")
    print(f"stdlib EmailMessage : {slow / n * 1e3:.3f} ms each")
    print(f"dripper build_email : {fast / n * 1e3:.3f} ms each")
    print(f"ratio               : {slow / fast:.1f}x faster")


if __name__ == "__main__":
    main(count_argument(3000))
