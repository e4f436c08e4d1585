"""Where e-mails go: the file outbox (default) or an SMTP server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    recipient: str
    data: bytes
    name: str  # a stable, file-system-safe name for this touch


class SendError(Exception):
    """The transport did not deliver. `transient` ones are retried later; `recipient`
    means the server refused this address permanently (a hard bounce)."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None, recipient: bool = False):
        super().__init__(message)
        self.transient = transient
        self.code = code
        self.recipient = recipient


class Transport(Protocol):
    async def open(self) -> None: ...

    async def send(self, envelope: Envelope) -> str: ...

    async def close(self) -> None: ...


def make_transport(smtp_url: str | None, outbox: object, max_connections: int) -> Transport:
    from pathlib import Path

    if smtp_url:
        from dripper.channels.email.transports.smtp import SmtpTransport

        return SmtpTransport.from_url(smtp_url, max_connections=max_connections)
    from dripper.channels.email.transports.files import FileTransport

    return FileTransport(Path(str(outbox)))
