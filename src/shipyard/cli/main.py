"""The `shipyard` command. Errors Shipyard raises are reported here, and only here."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from shipyard.cli import (
    artifacts,
    experiments,
    lineage,
    models,
    pipelines,
    render,
    runs,
    serving,
)
from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help=(
        "Shipyard: track runs, version and validate models, run pipelines, and serve and "
        "roll out models safely."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(runs.app, name="runs")
app.add_typer(experiments.app, name="experiments")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(models.app, name="models")
app.add_typer(pipelines.app, name="pipeline")
app.command("gc")(artifacts.gc)
app.command("lineage")(lineage.lineage)
app.command("gateway")(serving.gateway)
app.add_typer(serving.endpoints_app, name="endpoints")
app.command("deploy")(serving.deploy)
app.add_typer(serving.rollouts_app, name="rollouts")


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
        code = command.main(args=argv, prog_name="shipyard", standalone_mode=False)
    except ShipyardError as exc:
        render.print_error(exc.message)
        sys.exit(exc.exit_code)
    except typer.Abort:
        render.print_error("aborted")
        sys.exit(1)
    except Exception as exc:
        # Click's own errors (bad option, missing argument, ...), recognised by their
        # interface because Typer may bundle its own copy of Click. One line, like every
        # other error; the command's --help has the rest.
        message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if message is None or not isinstance(code, int):
            raise
        text = message().strip()
        if text:  # empty when the help was shown instead (a group called without a command)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            render.print_error(f"{text}{hint}")
        sys.exit(code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
