"""The HTTP server under `dripper serve`: uvicorn's h11 protocol with deadlines for what
the client sends.

uvicorn closes a connection that stays idle between requests (`timeout_keep_alive`), but
not one that sends part of a request and then waits: a few hundred such connections
("slowloris") would hold the server's sockets for ever. So each request has two
deadlines, counted from when the server starts waiting and not renewed by every byte:

- the request head (request line and headers) within HEAD_TIMEOUT of the connection
  opening, or of the previous response; else the connection is closed;
- the body within BODY_TIMEOUT of the head; else the client gets 408 (when no response
  has started) and the connection is closed. The endpoint reading it sees the client gone.

The protocol is h11 whether or not httptools is installed, so the deadlines always apply.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("dripper.web")
HEAD_TIMEOUT = 10.0  # seconds: a request head is a few hundred bytes
BODY_TIMEOUT = 30.0  # seconds: a 10 MB inbound message at 3 Mbit/s
_TIMEOUT_BODY = b"the request did not arrive in time\n"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)

Phase = Literal["head", "body"]


class DeadlineProtocol(H11Protocol):
    """H11Protocol whose requests must arrive within `head_timeout` and `body_timeout`."""

    head_timeout: float = HEAD_TIMEOUT
    body_timeout: float = BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._phase: Phase | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it so
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start the deadline of what the client owes us now, unless it is already running."""
        state = self.conn.their_state
        phase: Phase | None = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel()
        self._phase = phase
        if phase is not None and not self.transport.is_closing():
            seconds = self.head_timeout if phase == "head" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._phase = None

    def _expired(self, phase: Phase, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning("closed the connection of %s: the request %s did not arrive within %gs", client, phase, seconds)
        cycle = self.cycle if phase == "body" else None
        if cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                self.transport.write(_TIMED_OUT)
            cycle.disconnected = True  # the endpoint's next read sees the client gone; its answer goes nowhere
            cycle.message_event.set()
        self.transport.close()


def protocol(head_timeout: float = HEAD_TIMEOUT, body_timeout: float = BODY_TIMEOUT) -> type[DeadlineProtocol]:
    """The protocol class for uvicorn (`http=`), with these deadlines."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {"head_timeout": head_timeout, "body_timeout": body_timeout})


__all__ = ["BODY_TIMEOUT", "HEAD_TIMEOUT", "DeadlineProtocol", "protocol"]
