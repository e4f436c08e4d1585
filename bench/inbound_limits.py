"""How long one hostile inbound message holds up ingest, with and without the limits.

    python -m bench.inbound_limits

For each message: the time to read and classify it as `dripper ingest` does (parse
within limits, then classify what was kept), and as it was done before the limits
(parse everything, classify everything), as a ratio against the same two steps for an
ordinary bounce measured in the same run. The database is left out: it is the same
single event for every message, and is not what a hostile message can make slow.
"""

from __future__ import annotations

import statistics
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

from dripper.inbound import parse
from dripper.inbound.classify import classify

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "own"


def nested_multipart(depth: int) -> bytes:
    head = b"From: x@outside.example\r\nSubject: deep\r\n"
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth))
    return (
        head
        + opening
        + b"Content-Type: text/plain\r\n\r\nhi\r\n"
        + b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    )


def many_parts(count: int) -> bytes:
    head = b'From: x@outside.example\r\nSubject: wide\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return head + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * count + b"--b--\r\n"


def big_text(size: int) -> bytes:
    line = b"Please find our notes below, line after line of them, as long as the limit allows.\r\n"
    return b"From: x@outside.example\r\nSubject: long\r\n\r\n" + line * (size // len(line))


def with_attachment(size: int) -> bytes:
    import base64

    body = base64.encodebytes(bytes(range(256)) * (size // 256 // 4 * 3))
    return (
        b'From: x@outside.example\r\nSubject: Re: quote\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nDrawing attached.\r\n--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"--b--\r\n"
    )


def limited(raw: bytes) -> str:
    read = parse.read(raw)
    return f"unknown ({read.reason})" if isinstance(read, parse.Unreadable) else classify(read.message).kind


def unlimited(raw: bytes) -> str:
    try:
        return classify(message_from_bytes(raw, policy=policy.compat32)).kind
    except RecursionError:
        return "RecursionError"


def timed(function, raw: bytes, runs: int) -> tuple[float, str]:
    times, result = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        result = function(raw)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    baseline_raw = (CORPUS / "dsn-hard-511.eml").read_bytes()
    base_limited, _ = timed(limited, baseline_raw, 200)
    base_unlimited, _ = timed(unlimited, baseline_raw, 200)
    print(
        f"baseline: an ordinary bounce ({len(baseline_raw):,} bytes): {base_limited * 1e3:.2f} ms with limits, "
        f"{base_unlimited * 1e3:.2f} ms without (ratio {base_limited / base_unlimited:.2f}x)\n"
    )
    cases = [
        ("3,000 nested multiparts", nested_multipart(3000)),
        ("38 nested multiparts (allowed)", nested_multipart(38)),
        ("200,000 parts", many_parts(200_000)),
        ("1,000 parts (allowed)", many_parts(990)),
        ("24 MiB of text (allowed)", big_text(24 * 1024 * 1024)),
        ("20 MiB attachment (allowed)", with_attachment(20 * 1024 * 1024)),
    ]
    print(
        f"{'message':34} {'bytes':>12} {'with limits':>14} {'x baseline':>11} "
        f"{'without':>12} {'x baseline':>11}  result"
    )
    for name, raw in cases:
        runs = 3 if len(raw) > 1_000_000 else 10
        with_limits, verdict = timed(limited, raw, runs)
        without, old = timed(unlimited, raw, 1)
        print(
            f"{name:34} {len(raw):>12,} {with_limits * 1e3:>11.1f} ms {with_limits / base_limited:>10.0f}x "
            f"{without * 1e3:>9.1f} ms {without / base_unlimited:>10.0f}x  {verdict[:60]} (before: {old})"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
