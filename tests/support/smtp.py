"""Real SMTP servers (aiosmtpd) on 127.0.0.1 for the tests and the benchmarks.

Two kinds, one module:

- `SmtpSink`: a server in this process (aiosmtpd's Controller thread) that records every
  message it accepts and can be told to refuse (per recipient, or every DATA), to ask for
  a login, or to speak TLS. Stopped and started again, it keeps its port.
- `SinkProcess`: a server in its own process (`python -m tests.support.smtp`), for runs
  where the clients are processes too: it keeps counting while they are killed, it can be
  stopped and started again on the same port, and it does not share their GIL. It appends
  `Message-ID<TAB>recipient` to a log per message *before* its 250, as a real server's
  queue would have it: a client that dies before reading the 250 does not know it was
  delivered. It can wait before each 250 (a slow or distant server), and SIGTERM stops it
  gracefully: no new connections, new messages get 421, accepted ones get their 250.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import re
import signal
import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository: `python -m tests.support.smtp` runs from here
STATS_DOMAIN = "sink.invalid"  # RCPT TO:<stats@sink.invalid> asks a SinkProcess what it received
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


# --- in this process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that records what it accepts and can be told to refuse.

    `credentials=(user, password)` makes it require AUTH (PLAIN or LOGIN, over plain text
    too) and record every attempt in `logins`; any other keyword goes to aiosmtpd's
    Controller (`tls_context=…, require_starttls=True` for STARTTLS, `ssl_context=…` for
    implicit TLS).
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None, **controller_options: Any) -> None:
        self.messages: list[Received] = []
        self.logins: list[tuple[str, str]] = []  # (mechanism, user) of every AUTH attempt
        self.rcpt_reply: dict[str, str] = {}  # address -> SMTP reply for RCPT TO
        self.data_reply: str | None = None  # e.g. "451 4.3.0 try later"
        self.handler = self._handler()
        self.port = free_port()
        self.options = dict(controller_options)
        if credentials is not None:
            self.options.update(
                authenticator=self._authenticator(credentials), auth_required=True, auth_require_tls=False
            )
        self.controller: Any = None

    def _handler(self) -> Any:
        sink = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                reply = sink.rcpt_reply.get(address.lower())
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.data_reply:
                    return sink.data_reply
                sink.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                return "250 Message accepted for delivery"

        return Handler()

    def _authenticator(self, credentials: tuple[str, str]) -> Callable[..., Any]:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            if isinstance(auth_data, LoginPassword):
                user, password = auth_data.login.decode(), auth_data.password.decode()
                self.logins.append((mechanism, user))
                # handled=False: aiosmtpd answers 535 itself (True would mean "I replied already")
                return AuthResult(success=(user, password) == credentials, handled=False)
            return AuthResult(success=False, handled=False)

        return authenticate

    def start(self) -> None:
        """Start (or restart, on the same port) the server."""
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self.options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextlib.contextmanager
def smtp_sink(**options: Any) -> Iterator[SmtpSink]:
    """A started `SmtpSink(**options)`, stopped at the end."""
    sink = SmtpSink(**options)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


# --- in its own process: the server side --------------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    port: int
    log: Path | None = None  # appended `Message-ID<TAB>recipient` per accepted message
    delay_file: Path | None = None  # seconds to wait before each 250, read again while waiting
    latency: float = 0.0  # seconds to wait before each 250, when there is no delay_file
    nice: int | None = None  # the server's priority (a server on another machine must not be starved)
    check: str | None = None  # "module:function(recipient, data) -> bool", counted by the stats query


@dataclass
class _ServerState:
    stopping: bool = False
    replying: int = 0
    kept: list[tuple[str, bytes]] = field(default_factory=list)  # (recipient, data), for the stats query


def _predicate(spec: str) -> Callable[[str, bytes], bool]:
    module, _, name = spec.partition(":")
    function: Callable[[str, bytes], bool] = getattr(importlib.import_module(module), name)
    return function


def serve(options: ServeOptions) -> None:
    """Run the server until SIGTERM; print `ready` once it listens."""
    from aiosmtpd.smtp import SMTP

    log_fd = os.open(options.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if options.log else None
    if options.nice is not None:
        with contextlib.suppress(PermissionError):
            os.nice(options.nice)
    check = _predicate(options.check) if options.check else None
    state = _ServerState()

    def delay() -> tuple[float, bool]:
        """Seconds to wait before a 250, and whether they may change while waiting."""
        if options.delay_file is None or not options.delay_file.exists():
            return options.latency, False
        try:
            return float(options.delay_file.read_text() or 0), True
        except (OSError, ValueError):
            return 0.0, True

    def stats() -> str:
        checked = sum(1 for rcpt, data in state.kept if check(rcpt, data)) if check else len(state.kept)
        reply = f"550 received={len(state.kept)} checked={checked}"
        state.kept.clear()
        return reply

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address.lower().endswith("@" + STATS_DOMAIN):
                return stats()
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if state.stopping:
                return "421 4.3.2 shutting down"
            if log_fd is not None:
                found = MESSAGE_ID.search(envelope.original_content)
                ident = found.group(1).decode() if found else "-"
                # One write(2) on an O_APPEND descriptor: a whole line, even if killed.
                os.write(log_fd, f"{ident}\t{envelope.rcpt_tos[0]}\n".encode())
            if check is not None:
                state.kept.append((envelope.rcpt_tos[0], envelope.original_content))
            state.replying += 1
            try:
                loop = asyncio.get_running_loop()
                started = loop.time()
                while True:
                    seconds, changing = delay()
                    left = seconds - (loop.time() - started)
                    if left <= 0:
                        break
                    # Re-read while waiting: writing 0 to the delay file releases held messages.
                    await asyncio.sleep(min(left, 0.02) if changing else left)
            finally:
                state.replying -= 1
            return "250 2.0.0 queued"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink"), "127.0.0.1", options.port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        state.stopping = True
        server.close()
        deadline = loop.time() + 30
        while state.replying and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # let the last 250s leave the socket buffers

    asyncio.run(main())


# --- in its own process: the client side --------------------------------------------------------


@dataclass
class SinkProcess:
    """A `serve()` process, seen from a test or a benchmark: start, stop (gracefully or -9),
    slow it down, read its log, ask it what it received."""

    folder: Path  # its log (received.log) and delay file live here
    port: int = field(default_factory=free_port)
    latency: float = 0.0
    nice: int | None = None
    check: str | None = None
    logging: bool = True  # append to `log`; off, the server writes nothing per message
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "received.log"

    @property
    def delay_file(self) -> Path:
        return self.folder / "delay"

    def start(self) -> None:
        """Start (or restart, on the same port, with the same log) the server."""
        command = [sys.executable, "-m", "tests.support.smtp", str(self.port), "--latency", str(self.latency)]
        command += ["--delay-file", str(self.delay_file)]
        if self.logging:
            command += ["--log", str(self.log)]
        if self.nice is not None:
            command += ["--nice", str(self.nice)]
        if self.check is not None:
            command += ["--check", self.check]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        """SIGTERM: it answers what it accepted, then exits 0."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(40) == 0
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def niceness(self) -> int:
        assert self.process is not None
        return os.getpriority(os.PRIO_PROCESS, self.process.pid)

    def slow(self, seconds: float) -> None:
        """Wait `seconds` before each 250 from now on; messages waiting see the change."""
        self.delay_file.write_text(str(seconds))

    def received(self) -> list[tuple[str, str]]:
        """(Message-ID, recipient) of every accepted message, in order, duplicates kept."""
        if not self.log.exists():
            return []
        return [(mid, rcpt) for mid, rcpt in (line.split("\t") for line in self.log.read_text().splitlines())]

    def count(self) -> int:
        return self.log.read_bytes().count(b"\n") if self.log.exists() else 0

    def clear(self) -> None:
        self.log.write_bytes(b"")  # the server appends (O_APPEND): it goes on at the new end

    def stats(self) -> tuple[int, int]:
        """(messages received, of them passing `check`) since the last call; needs `check`."""
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.ehlo()
            client.mail("stats@" + STATS_DOMAIN)
            _code, message = client.rcpt("stats@" + STATS_DOMAIN)
        fields = dict(item.split("=") for item in message.decode().split())
        return int(fields["received"]), int(fields["checked"])


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.smtp", description=serve.__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--delay-file", type=Path)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--nice", type=int)
    parser.add_argument("--check")
    args = parser.parse_args(argv)
    serve(ServeOptions(args.port, args.log, args.delay_file, args.latency, args.nice, args.check))


if __name__ == "__main__":
    _main()
