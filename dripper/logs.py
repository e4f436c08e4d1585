"""Log set-up: readable text lines on a terminal, or one JSON object per line for a log shipper.

`DRIPPER_LOG_FORMAT=json` (or `dripper --log-format json …`) makes every line a JSON
object with `ts` (ISO-8601, UTC), `level`, `logger`, `msg`, `worker` (which process
wrote it: several workers share one database) and whatever a call passed with `extra=`,
e.g. the tick's counts: `log.info("tick …", extra={"tick": {"sent": 3, …}})`.
The text format shows the message alone, so extras never clutter it.

Libraries' routine notices are kept out unless asked for with `-vv` (debug): WeasyPrint
says, for every font of every letter, how it embeds the font ("Using fontTools instead of
HarfBuzz-Subset…", some 32 lines a batch where HarfBuzz-Subset is not installed) and
reports each rendering step at info; fontTools logs its subsetting. What WeasyPrint says
about a letter template (bad CSS, an image it cannot load) still shows.
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


# Library loggers and the level they show by default (below it, only at debug level).
QUIET_LIBRARIES: dict[str, int] = {"fontTools": logging.ERROR, "weasyprint.progress": logging.WARNING}


class FontEmbeddingNotices(logging.Filter):
    """Drops WeasyPrint's notices about embedding fonts in a PDF (its module pdf/fonts.py:
    how a font is subset, that a variable or emoji font could not be reworked): once per
    font per letter, and nothing a marketer can act on. Matched by module, not wording."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "weasyprint" and record.module == "fonts")


def quiet_libraries(debug: bool) -> None:
    """Keep library noise out of the log (`debug`: let everything through again)."""
    for name, level in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(logging.NOTSET if debug else level)
    weasyprint = logging.getLogger("weasyprint")
    for old in [f for f in weasyprint.filters if isinstance(f, FontEmbeddingNotices)]:
        weasyprint.removeFilter(old)
    if not debug:
        weasyprint.addFilter(FontEmbeddingNotices())


def setup(level: int, log_format: str, worker: str) -> None:
    """Configure the root logger once (a second call, or a host that configured logging, wins)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format, worker))
    logging.basicConfig(level=level, handlers=[handler])
    quiet_libraries(debug=level <= logging.DEBUG)
    if log_format == "json":
        # A Python warning printed as bare text would be the one line a JSON shipper cannot read.
        logging.captureWarnings(True)
