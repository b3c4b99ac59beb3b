"""The `shipyard` command. Errors Shipyard raises are reported here, and only here."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from shipyard.cli import artifacts, experiments, render, runs
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="Shipyard: track experiments and runs, compare them, and manage their artifacts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(runs.app, name="runs")
app.add_typer(experiments.app, name="experiments")
app.add_typer(artifacts.app, name="artifacts")
app.command("gc")(artifacts.gc)


def _print_version(value: bool) -> None:
    if value:
        from shipyard import __version__

        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    uri: Annotated[
        str | None,
        typer.Option(
            "--uri",
            help="Metadata store URI, e.g. sqlite:///path.db (overrides SHIPYARD_URI).",
            show_default=False,
        ),
    ] = None,
    artifacts_root: Annotated[
        str | None,
        typer.Option(
            "--artifacts",
            help="Artifact root folder or URL (overrides SHIPYARD_ARTIFACTS).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Shipyard: track experiments and runs, compare them, and manage their artifacts."""
    # Through the environment, so get_settings() everywhere sees the same values.
    if uri:
        os.environ["SHIPYARD_URI"] = uri
    if artifacts_root:
        os.environ["SHIPYARD_ARTIFACTS"] = artifacts_root


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `shipyard` script: run the app, report ShipyardError as one line."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="shipyard")
    except ShipyardError as exc:
        render.print_error(exc.message)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
