"""Log set-up: readable text lines on a terminal, or one JSON object per line for a log shipper.

`DRIPPER_LOG_FORMAT=json` (or `dripper --log-format json …`) makes every line a JSON
object with `ts` (ISO-8601, UTC), `level`, `logger`, `msg`, `worker` (which process
wrote it: several workers share one database) and whatever a call passed with `extra=`,
e.g. the tick's counts: `log.info("tick …", extra={"tick": {"sent": 3, …}})`.
The text format shows the message alone, so extras never clutter it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class DripperJsonFormatter(JsonFormatter):
    """python-json-logger with dripper's field names and an ISO-8601 UTC timestamp."""

    def __init__(self, worker: str):
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"},
            static_fields={"worker": worker},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # The default is local time without a zone; logs from several machines must sort.
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter(log_format: str, worker: str) -> logging.Formatter:
    if log_format == "json":
        return DripperJsonFormatter(worker)
    return logging.Formatter(TEXT_FORMAT)


def setup(level: int, log_format: str, worker: str) -> None:
    """Configure the root logger once (a second call, or a host that configured logging, wins)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, worker))
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == "json":
        # A Python warning printed as bare text would be the one line a JSON shipper cannot read.
        logging.captureWarnings(True)
