"""Environment variables and CLI options, merged into one Settings object."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# How long a claim on a touch lasts without renewal: a touch still `sending` that long
# after its holder last renewed it belongs to a dead worker, and any tick takes it again.
DEFAULT_LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///dripper.db"
    campaigns_path: Path = Path("campaigns.yaml")
    templates_dir: Path | None = None  # None = templates/ beside campaigns.yaml
    smtp_url: str | None = None  # None = file outbox
    base_url: str = "http://127.0.0.1:8000"
    secret: str | None = None  # None = generated once and kept in the database
    # Retired secrets: still accepted when verifying links, bounce addresses and test tokens,
    # never used to sign anything new (DRIPPER_SECRET_OLD, comma- or whitespace-separated).
    secret_old: tuple[str, ...] = ()
    api_token: str | None = None  # enables POST /inbound and /events on `dripper serve`
    metrics_token: str | None = None  # set: GET /metrics on `dripper serve` wants it as a Bearer token
    dashboard_token: str | None = None  # set: enables the read-only dashboard on `dripper serve`
    log_format: str = "text"  # text | json (one JSON object per log line)
    imap_url: str | None = None  # imaps://user:pass@host/INBOX: `dripper run` polls it
    imap_interval: float = 60.0
    outbox_dir: Path = Path("outbox")
    letters_dir: Path = Path("letters")
    calls_dir: Path = Path("calls")
    max_in_flight: int = 4
    tick_interval: float = 60.0
    # Every worker must use the same lease: each judges the others' claims by its own.
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    dkim_key: Path | None = None  # PEM private key; set = sign every e-mail
    dkim_selector: str = "dripper"
    dkim_domain: str | None = None  # None = the sender's domain
    dkim_keys: str | None = None  # keys per sending domain: DOMAIN=SELECTOR:PATH,... or a directory (email/dkim.py)
    # Processes that compose e-mails while this one talks SMTP (0 = compose in-process).
    render_processes: int = field(default_factory=lambda: 1 if (os.cpu_count() or 1) >= 2 else 0)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @property
    def templates_path(self) -> Path:
        return self.templates_dir if self.templates_dir is not None else self.campaigns_path.parent / "templates"

    def with_options(self, **options: Any) -> Settings:
        """Settings with every non-None option applied (CLI flags beat the environment)."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


def secret_list(text: str | None) -> tuple[str, ...]:
    """Secrets written as one string, separated by commas or whitespace (DRIPPER_SECRET_OLD)."""
    return tuple(part for part in re.split(r"[\s,]+", text or "") if part)


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}  # parsed per variable below; Settings checks nothing more
    simple = {
        "DRIPPER_DATABASE_URL": "database_url",
        "DRIPPER_SMTP_URL": "smtp_url",
        "DRIPPER_BASE_URL": "base_url",
        "DRIPPER_SECRET": "secret",
        "DRIPPER_API_TOKEN": "api_token",
        "DRIPPER_METRICS_TOKEN": "metrics_token",
        "DRIPPER_DASHBOARD_TOKEN": "dashboard_token",
        "DRIPPER_IMAP_URL": "imap_url",
        "DRIPPER_DKIM_SELECTOR": "dkim_selector",
        "DRIPPER_DKIM_DOMAIN": "dkim_domain",
        "DRIPPER_DKIM_KEYS": "dkim_keys",
    }
    paths = {
        "DRIPPER_CAMPAIGNS": "campaigns_path",
        "DRIPPER_TEMPLATES": "templates_dir",
        "DRIPPER_OUTBOX": "outbox_dir",
        "DRIPPER_LETTERS": "letters_dir",
        "DRIPPER_CALLS": "calls_dir",
        "DRIPPER_DKIM_KEY": "dkim_key",
    }
    for var, name in simple.items():
        if env.get(var):
            values[name] = env[var]
    for var, name in paths.items():
        if env.get(var):
            values[name] = Path(env[var])
    if secret_list(env.get("DRIPPER_SECRET_OLD")):
        values["secret_old"] = secret_list(env["DRIPPER_SECRET_OLD"])
    if env.get("DRIPPER_MAX_IN_FLIGHT"):
        values["max_in_flight"] = max(1, int(env["DRIPPER_MAX_IN_FLIGHT"]))
    if env.get("DRIPPER_RENDER_PROCESSES"):
        values["render_processes"] = max(0, int(env["DRIPPER_RENDER_PROCESSES"]))
    if env.get("DRIPPER_IMAP_INTERVAL"):
        values["imap_interval"] = max(1.0, float(env["DRIPPER_IMAP_INTERVAL"]))
    if env.get("DRIPPER_TICK_INTERVAL"):
        values["tick_interval"] = max(0.1, float(env["DRIPPER_TICK_INTERVAL"]))
    if env.get("DRIPPER_LEASE_SECONDS"):
        values["lease_seconds"] = max(1.0, float(env["DRIPPER_LEASE_SECONDS"]))
    if env.get("DRIPPER_LOG_FORMAT"):
        values["log_format"] = env["DRIPPER_LOG_FORMAT"].strip().lower()
    if "base_url" in values:
        values["base_url"] = str(values["base_url"]).rstrip("/")
    return Settings(**values)
