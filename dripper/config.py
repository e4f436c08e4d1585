"""Loading campaigns.yaml and templates together, all-or-nothing, and keeping the last
good version in a long-running worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dripper.campaign import model as campaigns
from dripper.campaign import templates as render
from dripper.campaign.model import CampaignFile
from dripper.campaign.templates import Renderer, TemplateSet
from dripper.errors import ConfigError
from dripper.planning.planner import Planner
from dripper.settings import Settings

log = logging.getLogger("dripper.config")


@dataclass(frozen=True)
class Loaded:
    campaigns: CampaignFile
    templates: TemplateSet
    renderer: Renderer
    planner: Planner


def load(settings: Settings) -> Loaded:
    """Validate campaigns.yaml and every template it names; raise ConfigError with every
    problem found, in one pass: the templates of the steps that validate are checked
    even when other parts of campaigns.yaml do not (nothing is loaded then)."""
    model, problems = campaigns.read(settings.campaigns_path)
    templates: TemplateSet | None = None
    try:
        templates = TemplateSet.load(settings.templates_path)
    except ConfigError as exc:  # a template that is not UTF-8: said with the rest
        problems += exc.problems
    if model is not None and templates is not None and model.campaigns:
        problems += render.check_templates(model, templates)
    if problems or model is None or templates is None:
        raise ConfigError(problems)
    return Loaded(model, templates, Renderer(model, templates), Planner(model))


def _stamp(settings: Settings) -> tuple[object, ...]:
    paths = [settings.campaigns_path]
    root = settings.templates_path
    if root.is_dir():
        paths += sorted(p for p in root.rglob("*") if p.is_file())
    out: list[tuple[str, int | None, int | None]] = []
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append((str(path), None, None))
    return tuple(out)


class Watcher:
    """Reloads on change; a broken edit is logged and the last good version kept.

    Whatever the load raises is an edit rejected, not a worker stopped: a ConfigError
    says where the problem is; anything else (a bug of ours, a file that vanished mid-
    read) is logged with its traceback. The same files are tried again once they change."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stamp = _stamp(settings)
        self.current = load(settings)
        self.last_error: str | None = None

    def refresh(self) -> Loaded:
        try:
            stamp = _stamp(self.settings)
            if stamp == self._stamp:
                return self.current
            self._stamp = stamp
            self.current = load(self.settings)
        except ConfigError as exc:
            self.last_error = str(exc)
            log.error("campaigns.yaml edit rejected, keeping the last good version:\n%s", exc)
        except Exception as exc:  # the worker goes on with what it had
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception(
                "campaigns.yaml or templates could not be loaded (%s), keeping the last good version", self.last_error
            )
        else:
            self.last_error = None
            log.info("campaigns reloaded from %s", self.settings.campaigns_path)
        return self.current


__all__ = ["Loaded", "Watcher", "load"]
