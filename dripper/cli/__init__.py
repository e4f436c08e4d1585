"""Command-line interface: argument parsing and output only; the work is done elsewhere.

`main` (the `dripper` console script) is the root group, in `root`; each command group
has a module of its own."""

from __future__ import annotations

from dripper.cli.root import main

__all__ = ["main"]
