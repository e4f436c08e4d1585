"""`dripper report`: the funnel."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dripper.cli.app import App, campaigns_or_none, err, fail, out, pass_app
from dripper.reports import funnel as report_mod


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Every figure as JSON on stdout.")
@click.option(
    "--csv",
    "csv_file",
    is_flag=False,
    flag_value="-",
    type=click.Path(path_type=Path, allow_dash=True),
    help="One row per campaign and step with every figure, to FILE (or stdout: --csv alone or --csv -).",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path),
    help="Write a self-contained HTML report to FILE (instead of the terminal tables).",
)
@pass_app
def report(app: App, as_json: bool, csv_file: Path | None, html_file: Path | None) -> None:
    """Per campaign and step: touches by state, leads enrolled, the replies, conversions,
    unsubscribes, bounces and complaints they brought, and their rates; movements between
    stages; time from first touch to conversion."""
    from dripper.reports import formats as report_formats

    to_stdout = csv_file is not None and str(csv_file) == "-"
    if as_json and to_stdout:
        fail("--json and --csv both write to stdout: give --csv a FILE", code=1)
    config = campaigns_or_none(app)  # without it, the report stands on the stored touches alone
    with app.store().begin() as conn:
        data = report_mod.funnel(conn, config)
        weekly = report_mod.weekly_sends(conn) if html_file else None
    # A report written to a file is said in one line, not printed again as the terminal
    # tables; stdout stays the JSON's or the CSV's alone when one of them goes there.
    said = err if as_json or to_stdout else out
    if html_file:
        html_file.write_text(report_formats.html_page(data, app.clock.now().astimezone(), weekly), encoding="utf-8")
        said.print(f"report written to {html_file}", markup=False, soft_wrap=True)
    if csv_file is not None and not to_stdout:
        csv_file.write_text(report_formats.to_csv(data), encoding="utf-8", newline="")
        said.print(f"report written to {csv_file}", markup=False, soft_wrap=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif to_stdout:
        click.echo(report_formats.to_csv(data), nl=False)
    elif not html_file and csv_file is None:
        for table in report_formats.tables(data):
            out.print(table)
