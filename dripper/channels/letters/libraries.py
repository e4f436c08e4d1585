"""Whether this machine can print letters, and what to install when it cannot.

WeasyPrint loads Pango, GObject, HarfBuzz and fontconfig from the system when it is
imported; pip cannot install them. On a machine without them the import raises OSError
("cannot load library 'libgobject-2.0-0'") after printing a banner to stdout. dripper
finds that out once (`Libraries`), says it in one line that names the packages to install
on this platform, and lets letter touches wait (reason `letters_unavailable: …`) while
e-mails and calls go on. Nothing here imports WeasyPrint until a letter needs it.

The package lists (checked against WeasyPrint's own install notes; for Debian 11, 12 and
13 with apt-cache, and for 12 and 13 by printing letters in minimal debootstrap roots;
see docs/operators/installation.md, "What letters need on the machine"):
- Debian and Ubuntu: libpango-1.0-0, libpangoft2-1.0-0 and libharfbuzz-subset0 bring
  GLib, HarfBuzz, fontconfig and a font (fonts-dejavu-core) as their dependencies.
  libharfbuzz-subset0 exists since Debian's harfbuzz 6.0.0+dfsg-2 (Debian 12, Ubuntu
  23.04): on older releases the subset library is not packaged, WeasyPrint does without
  it, and naming it would make apt-get refuse the whole line.
- Fedora: pango (harfbuzz, which it requires, holds the subset library).
- macOS: Homebrew's pango. A Python that is not Homebrew's own does not look in
  Homebrew's lib folder: DYLD_FALLBACK_LIBRARY_PATH has to name it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from dripper.clock import Clock, SystemClock
from dripper.states import Reason

log = logging.getLogger("dripper.letters")

# How long a letter touch waits before a tick looks at it again, and how often a
# long-running worker tries the libraries again (someone may have installed them).
WAIT = timedelta(hours=1)
RECHECK = WAIT
INSTALL_DOCS = "https://doc.courtbouillon.org/weasyprint/stable/first_steps.html#installation"

_CANNOT_LOAD = re.compile(r"cannot load library '([^']{1,200})'")


class Platform(Enum):
    DEBIAN = "debian"  # Debian, Ubuntu and their derivatives: apt-get
    DEBIAN_OLD = "debian-old"  # Debian 11, Ubuntu 22.10 and older: no libharfbuzz-subset0
    FEDORA = "fedora"  # Fedora, and RHEL 9 with its rebuilds: dnf
    MACOS = "macos"  # Homebrew
    OTHER = "other"


# What installs the libraries letters need, per platform (a root shell; `sudo` is added
# for anyone else where it applies).
INSTALL = {
    Platform.DEBIAN: "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0",
    Platform.DEBIAN_OLD: "apt-get install libpango-1.0-0 libpangoft2-1.0-0",
    Platform.FEDORA: "dnf install pango",
    Platform.MACOS: "brew install pango (a Python not from Homebrew also needs "
    "DYLD_FALLBACK_LIBRARY_PATH=$(brew --prefix)/lib)",
    Platform.OTHER: f"install Pango 1.44 or later with HarfBuzz and fontconfig ({INSTALL_DOCS})",
}
_NEEDS_ROOT = (Platform.DEBIAN, Platform.DEBIAN_OLD, Platform.FEDORA)
# Releases before libharfbuzz-subset0, by the codename a derivative names too (Linux Mint
# and Pop!_OS carry UBUNTU_CODENAME).
_BEFORE_SUBSET = {"stretch", "buster", "bullseye", "bionic", "focal", "jammy", "kinetic"}


def detect(system: str, os_release: Mapping[str, str]) -> Platform:
    """The platform by `sys.platform` and /etc/os-release's ID, ID_LIKE and codenames."""
    if system == "darwin":
        return Platform.MACOS
    ids = {os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()}
    if ids & {"debian", "ubuntu"}:
        codenames = {os_release.get("VERSION_CODENAME"), os_release.get("UBUNTU_CODENAME")}
        return Platform.DEBIAN_OLD if codenames & _BEFORE_SUBSET else Platform.DEBIAN
    if ids & {"fedora", "rhel", "centos"}:
        return Platform.FEDORA
    return Platform.OTHER


def install_command(found: Platform, root: bool) -> str:
    command = INSTALL[found]
    return command if root or found not in _NEEDS_ROOT else f"sudo {command}"


def this_platform() -> Platform:
    try:
        release = platform.freedesktop_os_release() if sys.platform.startswith("linux") else {}
    except OSError:  # no /etc/os-release (a minimal container, another Unix)
        release = {}
    return detect(sys.platform, release)


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)  # not on Windows
    return geteuid is not None and geteuid() == 0


@dataclass(frozen=True)
class Missing:
    """WeasyPrint cannot load a system library: which, and what installs it here."""

    library: str  # as WeasyPrint asked the loader for it, e.g. libgobject-2.0-0
    install: str  # the command (or the advice) that installs what letters need

    @property
    def reason(self) -> str:
        """A waiting touch's reason: short, and the same on every tick while nothing changes."""
        return f"{Reason.LETTERS_UNAVAILABLE}: cannot load {self.library}"

    @property
    def line(self) -> str:
        return f"letters need Pango: {self.install} (WeasyPrint cannot load {self.library})"


class LettersUnavailable(Exception):
    """Raised instead of WeasyPrint's OSError where a letter was to be rendered."""

    def __init__(self, missing: Missing):
        super().__init__(missing.line)
        self.missing = missing


def probe() -> Missing | None:
    """None when WeasyPrint loads (after the first time, a look in sys.modules), else what is
    missing. Imports WeasyPrint: call it only when a letter is to be rendered or checked."""
    if "weasyprint" in sys.modules:  # loaded already (a failed import leaves no entry)
        return None
    try:
        # WeasyPrint prints a banner to stdout before it raises: it would end up inside
        # `tick --json`'s output. (Only ever swapped on the one thread that renders letters,
        # or on the main thread of a command that does nothing else meanwhile.)
        with contextlib.redirect_stdout(io.StringIO()):
            import weasyprint  # noqa: F401
    except OSError as exc:
        found = _CANNOT_LOAD.search(str(exc))
        return Missing(found[1] if found else "Pango", install_command(this_platform(), _is_root()))
    return None


def require() -> None:
    """Raise LettersUnavailable when WeasyPrint cannot load its libraries."""
    missing = probe()
    if missing is not None:
        raise LettersUnavailable(missing)


class Libraries:
    """Whether letters can be printed, as one process (a `tick`, or a `run` worker across its
    ticks) finds out: tried at the first letter, said in one log line the first time they
    are missing, and tried again at most every RECHECK after that, so that a worker starts
    printing once someone installs them. Used from one thread at a time (the tick's letter
    thread)."""

    def __init__(self, clock: Clock | None = None):
        self._clock = clock or SystemClock()  # real time: how long since the last try
        self._missing: Missing | None = None
        self._tried_at: datetime | None = None
        self._told = False

    def missing(self) -> Missing | None:
        now = self._clock.now()
        if self._tried_at is not None and (self._missing is None or now - self._tried_at < RECHECK):
            return self._missing
        before = self._missing
        self._missing, self._tried_at = probe(), now
        if self._missing is not None and not self._told:
            log.warning("%s", self._missing.line, extra={"letters_unavailable": self._missing.library})
            self._told = True
        elif self._missing is None and before is not None:
            log.info("letters can be printed again: WeasyPrint loads its libraries now")
        return self._missing


__all__ = [
    "INSTALL",
    "RECHECK",
    "WAIT",
    "LettersUnavailable",
    "Libraries",
    "Missing",
    "Platform",
    "detect",
    "install_command",
    "probe",
    "require",
    "this_platform",
]
