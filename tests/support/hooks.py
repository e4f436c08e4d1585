"""A real webhook receiver on loopback: a threaded http.server that records every request
(body bytes and headers, as received) and answers `status` (set it to 500 to play a
receiver that is down, back to 200 when it recovers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from tests.support.net import QuietHandler


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Receiver:
    url: str
    port: int
    status: int = 200
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self) -> list[Request]:
        """The requests answered 2xx."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            hook = box[0]
            with hook.lock:
                status = hook.status
                hook.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
            self.answer(status, "text/plain", b"ok" if status < 300 else b"down for maintenance")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    bound = server.server_address[1]
    box.append(Receiver(f"http://127.0.0.1:{bound}/hook", int(bound)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class AtAttemptTime(Webhook):
    """The package's verification, with its 5-minute tolerance measured from the time the
    attempt was signed (the tests move the clock by hours) instead of the wall clock."""

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:  # the package's private hook
        from datetime import UTC

        return datetime.fromtimestamp(float(timestamp_header), tz=UTC)


def verify(secret: str, request: Request) -> Any:
    """The JSON body once `standardwebhooks` verified the signature; raises otherwise."""
    return AtAttemptTime(secret).verify(request.body, request.headers)
