"""What every command shares: the settings and the lazily opened store and campaigns
(`App`), the two consoles, `fail`, and the `--at` option."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn

import click
from rich.console import Console

from dripper import config as config_mod
from dripper.campaign.model import CampaignFile
from dripper.clock import Clock, SystemClock, clock_at, parse_instant
from dripper.errors import ConfigError
from dripper.settings import Settings
from dripper.store import Store, StoreUnavailable, open_store

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass
class App:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)  # what "now" is where no --at says otherwise
    _store: Store | None = None
    _loaded: config_mod.Loaded | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def loaded(self) -> config_mod.Loaded:
        if self._loaded is None:
            try:
                self._loaded = config_mod.load(self.settings)
            except ConfigError as exc:
                for problem in exc.problems:
                    err.print(str(problem), markup=False, soft_wrap=True)
                fail(f"{len(exc.problems)} problem(s) in {self.settings.campaigns_path}; nothing was changed", code=1)
        return self._loaded

    def store(self) -> Store:
        if self._store is None:
            try:
                self._store = open_store(self.settings.database_url)
            except StoreUnavailable as exc:
                fail(str(exc), code=1)
            self.cleanups.append(self._store.dispose)
        return self._store


pass_app = click.make_pass_decorator(App)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"dripper: {message}", markup=False, soft_wrap=True)
    raise SystemExit(code)


def at_instant(text: str | None) -> datetime | None:
    """The instant of an `--at` option, None when it is not given; a bad one exits 1."""
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        fail(f"bad --at {text!r}: use ISO-8601, e.g. 2026-11-23T09:00:00+00:00", code=1)


def at_clock(at: str | None) -> Clock:
    """A clock frozen at `--at`, or the system clock when it is not given."""
    at_instant(at)
    return clock_at(at)


def at_or_now(at: str | None) -> datetime:
    """The instant of `--at`, or now."""
    return at_instant(at) or at_clock(None).now()


AT = click.option("--at", "at", metavar="ISO-8601", help="The instant this happens (default: now).")


def campaigns_or_none(app: App) -> CampaignFile | None:
    """The campaigns model, or None when campaigns.yaml cannot be read (commands that only
    look at the store still work then)."""
    from dripper.campaign.model import load as load_campaigns

    try:
        return load_campaigns(app.settings.campaigns_path)
    except ConfigError:
        return None
