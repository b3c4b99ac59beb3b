"""`shipyard experiments ...`: list, create, rename, delete and restore experiments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.runs import open_cli_store

app = typer.Typer(
    help="List, create, rename, delete and restore experiments.",
    no_args_is_help=True,
)

EXPERIMENT_ARG_HELP = "Experiment name or id."


@app.command("ls")
def list_experiments(
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    iso: Annotated[
        bool, typer.Option("--iso", help="Show creation times as ISO 8601 UTC.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of experiments.")
    ] = False,
) -> None:
    """List experiments."""
    with open_cli_store() as store:
        experiments = store.list_experiments(include_deleted=all_)
        counts = store.count_runs()
    if as_json:
        render.print_json([{**e.to_dict(), "runs": counts.get(e.id, 0)} for e in experiments])
        return
    t = render.table("id", "name", "runs", "lifecycle", "created")
    t.columns[0].justify = t.columns[2].justify = "right"
    for e in experiments:
        lifecycle = Text(e.lifecycle, style="dim" if e.lifecycle == "deleted" else "")
        t.add_row(
            str(e.id),
            e.name,
            str(counts.get(e.id, 0)),
            lifecycle,
            render.format_time(e.created_at, iso=iso),
        )
    console = render.out()
    if experiments:
        console.print(t)
    else:
        console.print("no experiments", style="dim")


@app.command("create")
def create_experiment(
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
) -> None:
    """Create an experiment."""
    with open_cli_store(create=True) as store:
        exp = store.create_experiment(name)
    render.out().print(f"created experiment {exp.name!r} (id {exp.id})", markup=False)


@app.command("rename")
def rename_experiment(
    old: Annotated[str, typer.Argument(help=EXPERIMENT_ARG_HELP)],
    new: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Rename an experiment; its runs keep pointing at it."""
    with open_cli_store() as store:
        exp = store.get_experiment(old)
        renamed = store.rename_experiment(exp.id, new)
    render.out().print(
        f"renamed experiment {exp.name!r} to {renamed.name!r} (id {exp.id})", markup=False
    )


@app.command("delete")
def delete_experiment(
    experiment: Annotated[str, typer.Argument(help=EXPERIMENT_ARG_HELP)],
) -> None:
    """Mark an experiment deleted (its runs are hidden; `experiments restore` undoes it)."""
    with open_cli_store() as store:
        exp = store.get_experiment(experiment)
        store.delete_experiment(exp.id)
    render.out().print(f"deleted experiment {exp.name!r} (id {exp.id})", markup=False)


@app.command("restore")
def restore_experiment(
    experiment: Annotated[str, typer.Argument(help=EXPERIMENT_ARG_HELP)],
) -> None:
    """Bring back a deleted experiment."""
    with open_cli_store() as store:
        exp = store.get_experiment(experiment)
        store.restore_experiment(exp.id)
    render.out().print(f"restored experiment {exp.name!r} (id {exp.id})", markup=False)
