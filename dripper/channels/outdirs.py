"""The folders dripper writes into: the e-mail outbox, letters and call lists (each
channel's part names its own, dripper.channels.base.ChannelPart.output_dir).

A tick cannot do its work when one of them cannot be made or written (a file called
`outbox` where the folder should be, a folder it may not write): that is said plainly
before anything is claimed, rather than found as a traceback halfway through.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from dripper.channels.base import OutputDir
from dripper.settings import Settings


def output_dirs(settings: Settings, channels: Collection[str]) -> list[OutputDir]:
    """The folders a tick may write into with these settings, for steps on `channels`
    (a file called `letters` is no one's business when no campaign sends letters)."""
    from dripper.channels import registry

    return registry.output_dirs(settings, channels)


def problem(folder: OutputDir) -> str | None:
    """What stops dripper from writing into the folder (made when first needed), or None."""
    path = folder.path
    where = f"{path} ({folder.what}; {folder.variable} moves it)"
    if path.is_symlink() and not path.exists():
        return f"{where} is a symbolic link to nothing: remove it, or point it at a folder"
    if path.exists() and not path.is_dir():
        return f"{where} exists but is not a folder: move it away, or set {folder.variable} to a folder"
    for ancestor in (path, *path.parents):  # the nearest one that exists decides whether it can be made
        if ancestor.exists() or ancestor == Path(ancestor.anchor or "."):
            if not ancestor.is_dir():
                return f"{where} cannot be made: {ancestor} is a file, not a folder"
            if not os.access(ancestor, os.W_OK | os.X_OK):
                return f"{where} cannot be written: no permission to write into {ancestor}"
            return None
    return None  # pragma: no cover - the loop ends at the anchor or "."


def problems(settings: Settings, channels: Collection[str]) -> list[str]:
    return [found for folder in output_dirs(settings, channels) if (found := problem(folder)) is not None]


__all__ = ["OutputDir", "output_dirs", "problem", "problems"]
