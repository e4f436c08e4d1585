"""What several benchmarks share: the count from the command line, timing a function over
inputs, and the plain leads file the sending benchmarks import."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # import instant (a Monday, 09:00 in Chicago: the send window is open)
LEAD_COLUMNS = ("email", "first_name", "last_name", "company", "stage", "timezone", "product")


def count_argument(default: int) -> int:
    """N, the benchmark's only positional argument (`python -m bench.NAME [N]`)."""
    return int(sys.argv[1]) if len(sys.argv) > 1 else default


def timed(function: Callable[[Any], object], inputs: Iterable[Any]) -> float:
    """Seconds spent calling `function` once on each input."""
    start = time.perf_counter()
    for item in inputs:
        function(item)
    return time.perf_counter() - start


def write_plain_leads(path: Path, n: int) -> None:
    """n leads due for the shipped `research-thanks` e-mail, each named after its address
    (lead123@… is "Lead123") so a sink can tell that a message was rendered for its lead."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEAD_COLUMNS)
        for i in range(n):
            writer.writerow(
                [
                    f"lead{i}@x{i % 50}.example",
                    f"Lead{i}",
                    "Lee",
                    "Co",
                    "supplier_research",
                    "America/Chicago",
                    "valves",
                ]
            )
