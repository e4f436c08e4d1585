"""Write the project skeleton (dripper/project/skeleton/, package data) into a folder.

The files are read through importlib.resources, so they come from the installed wheel
as well as from a source checkout. Nothing is overwritten unless asked: a marketer's
edited campaigns.yaml is worth more than any skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class SkeletonFile:
    path: PurePosixPath  # relative to the project folder
    source: Traversable


class ProjectExists(Exception):
    """Some of the files init would write are there already: nothing was written."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        super().__init__(", ".join(str(p) for p in paths))


def skeleton_files() -> list[SkeletonFile]:
    """Every file of the skeleton, in path order."""
    found: list[SkeletonFile] = []

    def walk(node: Traversable, at: PurePosixPath) -> None:
        for child in node.iterdir():
            if child.name.startswith((".", "__")):  # __pycache__, editor droppings
                continue
            if child.is_dir():
                walk(child, at / child.name)
            else:
                found.append(SkeletonFile(at / child.name, child))

    walk(files("dripper.project") / "skeleton", PurePosixPath())
    return sorted(found, key=lambda f: f.path.parts)


def existing(target: Path) -> list[Path]:
    """The skeleton's paths that already exist under `target` (a dangling link counts)."""
    paths = [target.joinpath(*f.path.parts) for f in skeleton_files()]
    return [p for p in paths if p.exists() or p.is_symlink()]


def write(target: Path, *, force: bool = False) -> list[Path]:
    """Write the skeleton into `target` (made if missing); the paths written. Unless
    `force`, refuse with ProjectExists, before writing anything, when a file is there."""
    if not force:
        clash = existing(target)
        if clash:
            raise ProjectExists(clash)
    written = []
    for item in skeleton_files():
        dest = target.joinpath(*item.path.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # "x": a file that appeared since the check above is still not overwritten.
        with open(dest, "wb" if force else "xb") as handle:
            handle.write(item.source.read_bytes())
        written.append(dest)
    return written
