"""What `dripper serve` answers when a request cannot be served: the status says whose
fault it is, because the status is what a webhook sender acts on.

- bad input: 4xx, decided by each endpoint (the sender drops it; resending would not help);
- the database unavailable: 503 with Retry-After (the sender keeps the message and retries:
  an inbound bounce or a CRM event is not lost during an outage);
- anything else: 500, logged with its traceback (a bug of ours; the sender retries too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dripper.store import StoreUnavailable

log = logging.getLogger("dripper.web")
RETRY_AFTER = 60  # seconds: long enough for a database restart, short for a sender's queue

# The database (or the way to it) failed, not the statement: worth retrying as it is.
_UNAVAILABLE = (
    StoreUnavailable,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database cannot be used right now:
    unreachable, dropped, restarting, locked past the busy timeout, out of connections, or
    (SQLite) a file that is no longer a database."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE) or type(current) is sa_exc.DatabaseError:
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class Failure:
    """A request we could not serve through no fault of its own."""

    status: int  # 503 or 500
    title: str  # for a person
    detail: str  # one sentence, for a person or a program

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER)} if self.status == 503 else {}


UNAVAILABLE = Failure(
    503, "Please try again in a minute", "the database is unavailable; nothing was changed: please try again later"
)
INTERNAL = Failure(
    500,
    "Something went wrong on our side",
    "an internal error; it was logged, and nothing was changed: please try again later",
)


class Guard:
    """ASGI middleware around the routes: an exception an endpoint lets through becomes a
    503 or a 500 (`respond` words it for the path: JSON for programs, a page for people),
    never a 4xx. A client that went away gets nothing, and is no error."""

    def __init__(self, app: ASGIApp, respond: Callable[[Scope, Failure], Response]):
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            log.info("%s %s: the client went away before its request was complete", scope["method"], scope["path"])
        except Exception as exc:
            if started:  # too late to say anything: the server closes the connection
                raise
            failure = UNAVAILABLE if database_unavailable(exc) else INTERNAL
            if failure is UNAVAILABLE:
                log.error("%s %s: the database is unavailable, answered 503: %s", scope["method"], scope["path"], exc)
            else:
                log.exception("%s %s: unexpected error, answered 500", scope["method"], scope["path"])
            await self.respond(scope, failure)(scope, receive, send)


__all__ = ["INTERNAL", "RETRY_AFTER", "UNAVAILABLE", "Failure", "Guard", "database_unavailable"]
