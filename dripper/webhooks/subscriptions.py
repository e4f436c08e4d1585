"""Subscriptions: from campaigns.yaml's `webhooks:` (kept in the database, in step with the
file) and from `dripper webhooks add`. A secret is never written in the YAML: the file
names the environment variable that holds it.

    webhooks:
      - url: https://hooks.example.com/dripper
        events: [lead.replied, lead.converted]      # or ["*"]
        secret_env: DRIPPER_WEBHOOK_SECRET          # holds whsec_… (Standard Webhooks)
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection

from dripper.store.queries import webhookrows
from dripper.webhooks.events import parse_events


class WebhookSpec(BaseModel):
    """One entry of `webhooks:` in campaigns.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] = Field(min_length=1)
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        check_url(url)
        return url

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        return list(parse_events(",".join(events)))


def check_url(url: str) -> None:
    """ValueError unless `url` is an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def add(conn: Connection, url: str, events: str, at: datetime, secret_env: str | None = None) -> tuple[int, str | None]:
    """A subscription from the CLI: its id, and the secret generated for it (None when
    `secret_env` names where the secret is). ValueError for a bad URL or event."""
    check_url(url)
    names = parse_events(events)
    secret = None if secret_env else new_secret()
    sub_id = webhookrows.add_subscription(conn, url, names, at, source="cli", secret=secret, secret_env=secret_env)
    return sub_id, secret


def sync(conn: Connection, specs: Sequence[WebhookSpec], at: datetime) -> None:
    """The database's `file` subscriptions made those of campaigns.yaml."""
    webhookrows.sync_file_subscriptions(conn, [(s.url, tuple(s.events), s.secret_env) for s in specs], at)
