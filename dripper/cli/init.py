"""`dripper init [DIR]`: start a project from a small working skeleton."""

from __future__ import annotations

from pathlib import Path

import click

from dripper.cli.app import err, fail, out


@click.command("init")
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the skeleton's files where they exist already.")
def init(directory: Path, force: bool) -> None:
    """Write a small working project into DIRECTORY (default: here): campaigns.yaml with
    one campaign over the funnel stages, a handful of templates, and an example
    leads.csv. Existing files are never overwritten unless --force is given."""
    from dripper.project import skeleton

    if directory.exists() and not directory.is_dir():
        fail(f"{directory} is not a folder", code=1)
    try:
        written = skeleton.write(directory, force=force)
    except skeleton.ProjectExists as exc:
        for path in exc.paths:
            err.print(f"dripper: {path} exists", markup=False, soft_wrap=True)
        fail(f"{len(exc.paths)} file(s) exist already; nothing was written (--force overwrites them)", code=1)
    except OSError as exc:
        fail(f"cannot write the project: {exc}", code=1)
    for path in written:
        out.print(f"wrote {path}", markup=False, soft_wrap=True)
    go = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    out.print(
        f"\na dripper project in {directory}: try it with\n"
        f"  {go}dripper check && dripper leads import leads.csv && dripper tick && ls outbox/",
        markup=False,
        soft_wrap=True,
    )
