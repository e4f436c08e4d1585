"""Polling a mailbox over IMAP (TLS): each message is ingested, then moved to a
"processed" folder, never deleted. Restart-safe: ingesting is idempotent by Message-ID,
so a message ingested just before a crash, but not yet moved, changes nothing the
second time.

Each message is processed on its own: one that is too large, too deeply nested or
otherwise unreadable is recorded as `unknown` with the reason and moved to a quarantine
folder, and the poll goes on with the next. Only a failure on our side (the database)
stops a poll, leaving the message where it is for the next one."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import datetime

from dripper import serverurl
from dripper.inbound import parse
from dripper.inbound.ingest import Ingested, Ingestor

log = logging.getLogger("dripper.imap")


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    tls: bool  # implicit TLS (imaps://); imap:// uses STARTTLS unless ?starttls=false
    starttls: bool
    username: str
    password: str
    mailbox: str
    processed: str
    quarantine: str  # messages that could not be read within limits
    verify: bool
    batch: int

    @classmethod
    def parse(cls, url: str) -> ImapConfig:
        """`imaps://user:pass@host:993/INBOX?processed=Processed&quarantine=Quarantine&batch=200`"""
        server = serverurl.parse(url, "DRIPPER_IMAP_URL", {"imaps": (True, 993), "imap": (False, 143)})
        return cls(
            host=server.host,
            port=server.port,
            tls=server.implicit_tls,
            starttls=not server.implicit_tls and server.flag("starttls", True),
            username=server.username,
            password=server.password,
            mailbox=server.path or "INBOX",
            processed=server.option("processed", "Processed"),
            quarantine=server.option("quarantine", "Quarantine"),
            verify=server.flag("verify", True),
            batch=max(1, int(server.option("batch", "200"))),
        )

    def context(self) -> ssl.SSLContext:
        return serverurl.tls_context(self.verify)


def _connect(config: ImapConfig) -> imaplib.IMAP4:
    if config.tls:
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=config.context(), timeout=30)
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=30)
        if config.starttls:
            client.starttls(ssl_context=config.context())
    client.login(config.username, config.password)
    return client


def _move(client: imaplib.IMAP4, uid: str, folder: str) -> None:
    if "MOVE" in client.capabilities:
        status, _ = client.uid("MOVE", uid, folder)
        if status == "OK":
            return
    status, _ = client.uid("COPY", uid, folder)
    if status != "OK":
        raise imaplib.IMAP4.error(f"cannot copy message {uid} to {folder}")
    client.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
    if "UIDPLUS" in client.capabilities:
        client.uid("EXPUNGE", uid)
    else:
        client.expunge()


def poll(config: ImapConfig, ingestor: Ingestor, at: datetime) -> list[Ingested]:
    """Ingest what is waiting in the mailbox (up to `batch` messages) and move it away."""
    client = _connect(config)
    results: list[Ingested] = []
    try:
        for folder in (config.processed, config.quarantine):
            client.create(_quoted(folder))  # fails harmlessly when it exists
        status, _ = client.select(_quoted(config.mailbox))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open mailbox {config.mailbox}")
        status, data = client.uid("SEARCH", "ALL")
        uids = _uids(data[0])[: config.batch] if status == "OK" else []
        for uid in uids:
            result = _ingest_one(client, config, ingestor, uid, at)
            if result is None:
                continue
            results.append(result)
            _move(client, uid, _quoted(config.quarantine if result.quarantine else config.processed))
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
    return results


def _uids(answer: bytes | None) -> list[str]:
    """The UIDs of a SEARCH answer (`b"3 7 12"`): ASCII digits, sent back as text."""
    return (answer or b"").decode("ascii").split()


def _fetch(client: imaplib.IMAP4, uid: str, item: str) -> bytes | None:
    status, parts = client.uid("FETCH", uid, f"({item})")
    return next((p[1] for p in parts if isinstance(p, tuple)), None) if status == "OK" else None


def _size(client: imaplib.IMAP4, uid: str) -> int | None:
    status, parts = client.uid("FETCH", uid, "(RFC822.SIZE)")
    if status != "OK":
        return None
    answer = b" ".join(p[0] if isinstance(p, tuple) else p for p in parts if isinstance(p, (bytes, tuple)))
    found = re.search(rb"RFC822\.SIZE (\d+)", answer)
    return int(found.group(1)) if found else None


def _ingest_one(
    client: imaplib.IMAP4, config: ImapConfig, ingestor: Ingestor, uid: str, at: datetime
) -> Ingested | None:
    name = f"imap:{config.mailbox}/{uid}"
    size = _size(client, uid)
    if size is not None and size > parse.MAX_BYTES:  # not fetched whole: its headers tell what it was
        return ingestor.too_large(_fetch(client, uid, "BODY.PEEK[HEADER]") or b"", size, name, at)
    raw = _fetch(client, uid, "BODY.PEEK[]")
    return None if raw is None else ingestor.ingest_each(raw, name, at)


def _quoted(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name) else '"' + name.replace('"', r"\"") + '"'
