"""What every process dripper forks does first: tie its life to its parent's.

A forked helper (the tick's render worker, the importer's reader) must not outlive the
process that forked it. Killed with -9, the parent cannot shut its helpers down, and an
orphan would keep, besides its memory, its copies of the parent's sockets: the database
server would keep the dead parent's sessions open, and with them any advisory lock they
held (IMAP polling, print batches).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dripper.channels.compose import Composer

PR_SET_PDEATHSIG = 1  # prctl(2) option: a signal for this process when its parent dies


def die_with(parent: int) -> None:
    """Call first thing in a forked child; `parent` is os.getpid() of the parent, taken before the fork."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # Linux: the kernel kills us with the parent
    except (OSError, AttributeError):  # elsewhere: watch for the parent to go away
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


# --- the tick's render worker ----------------------------------------------------------
# Forked (never spawned) so that it inherits the composer as it is, templates compiled;
# the composer is the child's own (set once, by the initializer, in the child only).
_CHILD_COMPOSER: Composer | None = None


def init_render_worker(composer: Composer, parent: int) -> None:
    global _CHILD_COMPOSER
    _CHILD_COMPOSER = composer
    die_with(parent)


def render_worker_ready() -> bool:
    return _CHILD_COMPOSER is not None


def render_worker_composer() -> Composer:
    """The composer, in a render worker (a channel's `compose_ahead` jobs run there)."""
    assert _CHILD_COMPOSER is not None, "not in a render worker"
    return _CHILD_COMPOSER


__all__ = ["die_with", "init_render_worker", "render_worker_composer", "render_worker_ready"]
