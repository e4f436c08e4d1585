"""The file outbox: one `.eml` per e-mail, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from dripper.channels.email.transports import Envelope, SendError


class FileTransport:
    idempotent = True  # a resend rewrites the same file: nothing can arrive twice

    def __init__(self, directory: Path):
        self.directory = directory

    async def open(self) -> None:
        from dripper.channels.outdirs import OutputDir, problem

        found = problem(OutputDir(self.directory, "the e-mail outbox", "DRIPPER_OUTBOX"))
        if found:  # said plainly (`dripper run` logs it each tick), not as mkdir's FileExistsError
            raise NotADirectoryError(found)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def send(self, envelope: Envelope) -> str:
        if envelope.name in ("", ".", "..") or "/" in envelope.name or "\0" in envelope.name:
            # Names are made by compose.touch_name/safe_name; anything else is a bug, never a path.
            raise SendError(f"not a file name: {envelope.name!r}", transient=False)
        path = self.directory / f"{envelope.name}.eml"
        tmp = path.with_suffix(".eml.tmp")
        with open(tmp, "wb") as handle:
            # What a receiving server records: the envelope sender (the VERP bounce address).
            handle.write(f"Return-Path: <{envelope.mail_from}>\r\n".encode("ascii"))
            handle.write(envelope.data)
        os.replace(tmp, path)  # a reader never sees half a message
        return str(path)

    async def close(self) -> None:
        return None
