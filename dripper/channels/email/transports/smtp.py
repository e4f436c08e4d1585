"""SMTP via aiosmtplib: a small pool of persistent connections, one send each at a time."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from dripper.channels.email.transports import Envelope, SendError

_TRUE = {"1", "true", "yes", "on"}
IDLE_CHECK_AFTER = 5.0  # seconds a pooled connection may sit unused before it is checked


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    verify: bool = True
    timeout: float = 30.0

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(
                f"DRIPPER_SMTP_URL must start with smtp:// or smtps:// (got {parts.scheme or 'nothing'}://)"
            )
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=query.get("starttls", "false") in _TRUE,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            verify=query.get("verify", "true") in _TRUE,
            timeout=float(query.get("timeout", "30")),
        )


class SmtpTransport:
    def __init__(self, config: SmtpConfig, max_connections: int = 4):
        self.config = config
        self.max_connections = max(1, max_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # connection, when it was last used
        self._slots = asyncio.Semaphore(self.max_connections)
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # loading the CA store is slow: once, and only for TLS
            self._tls = ssl.create_default_context()
            if not self.config.verify:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        return self._tls

    @classmethod
    def from_url(cls, url: str, max_connections: int = 4) -> SmtpTransport:
        return cls(SmtpConfig.parse(url), max_connections)

    async def open(self) -> None:
        return None  # connections are made on first use and then kept

    async def _connect(self) -> aiosmtplib.SMTP:
        c = self.config
        tls = c.implicit_tls or c.starttls
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            use_tls=c.implicit_tls,
            start_tls=c.starttls if not c.implicit_tls else False,
            timeout=c.timeout,
            tls_context=self._tls_context() if tls else None,
        )
        await client.connect()
        if c.username:
            try:
                await client.login(c.username, c.password or "")
            except aiosmtplib.SMTPException as exc:
                client.close()
                # Wrong credentials are the operator's to fix, not the message's fault:
                # keep the touches for later rather than failing them.
                code = getattr(exc, "code", None)
                raise SendError(
                    f"auth: {code or ''} {getattr(exc, 'message', exc)}".strip(), transient=True, code=code
                ) from None
        return client

    async def _idle_client(self) -> aiosmtplib.SMTP | None:
        """A pooled connection that still works. One idle for a while is checked with a
        NOOP first: servers close idle sessions, and finding out on MAIL FROM would cost the
        touch a retry; nothing has been sent on it yet, so checking is always safe."""
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected:
                client.close()
                continue
            if time.monotonic() - since < IDLE_CHECK_AFTER:
                return client
            try:
                await client.noop()
                return client
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()
        return None

    async def send(self, envelope: Envelope) -> str:
        async with self._slots:
            client = await self._idle_client()
            if client is None:
                try:
                    client = await self._connect()
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    raise SendError(f"connection: {exc or type(exc).__name__}", transient=True) from None
            try:
                _errors, response = await client.sendmail(envelope.mail_from, [envelope.recipient], envelope.data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._recycle(client)
                refusal = exc.recipients[0] if exc.recipients else None
                code = refusal.code if refusal else None
                text = f"{code} {refusal.message}" if refusal else str(exc)
                raise SendError(text, transient=_transient(code), code=code, recipient=not _transient(code)) from None
            except aiosmtplib.SMTPResponseException as exc:
                await self._recycle(client)
                raise SendError(f"{exc.code} {exc.message}", transient=_transient(exc.code), code=exc.code) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                await _discard(client)
                raise SendError(f"connection: {exc or type(exc).__name__}", transient=True) from None
            self._idle.append((client, time.monotonic()))
            return response

    async def _recycle(self, client: aiosmtplib.SMTP) -> None:
        """After a refused message the session is still good: reset it and keep it."""
        try:
            await client.rset()
            self._idle.append((client, time.monotonic()))
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()


def _transient(code: int | None) -> bool:
    return code is None or 400 <= code < 500


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()
