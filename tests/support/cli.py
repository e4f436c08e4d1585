"""`dripper` as its own process, the way cron or a shell runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def run_dripper(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 120, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`python -m dripper ARGS` in `cwd`, its output captured as text; the exit status is
    the caller's to check."""
    command = [sys.executable, "-m", "dripper", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False, **options
    )
