"""`shipyard artifacts ...` (list and download a run's files) and `shipyard gc`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli import render
from shipyard.cli.runs import RUN_ARG_HELP, artifact_table, open_cli_store, resolve_run
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.artifacts.blobs import BlobStore
    from shipyard.store.entities import ArtifactEntry

app = typer.Typer(help="List and download the files a run logged.", no_args_is_help=True)

PATH_ARG_HELP = "A file or folder inside the run's artifacts (default: all of them)."


def open_blobs() -> BlobStore:
    from shipyard.artifacts.blobs import BlobStore
    from shipyard.config import get_settings

    return BlobStore(get_settings().artifact_root())


def _entries(run: str, path: str | None) -> tuple[str, list[ArtifactEntry]]:
    from shipyard.artifacts.paths import normalize_artifact_path

    prefix = normalize_artifact_path(path) if path else ""
    with open_cli_store() as store:
        record = resolve_run(store, run)
        entries = store.list_artifacts(record.id, prefix)
    return record.id, entries


@app.command("ls")
def list_artifacts(
    run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)],
    path: Annotated[str | None, typer.Argument(help=PATH_ARG_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of files (path, digest, size).")
    ] = False,
) -> None:
    """List a run's artifact files with their sizes and digests."""
    run_id, entries = _entries(run, path)
    if path and not entries:
        raise NotFound(f"run {run_id} has no artifacts under {path!r}")
    if as_json:
        render.print_json([{"path": e.path, "digest": e.digest, "size": e.size} for e in entries])
        return
    console = render.out()
    if not entries:
        where = f" under {path!r}" if path else ""
        console.print(f"run {run_id[:8]} has no artifacts{where}", style="dim", markup=False)
        return
    console.print(artifact_table(entries))
    total = sum(e.size for e in entries)
    files = f"{len(entries)} file{'s' * (len(entries) != 1)}"
    console.print(f"{files}, {render.format_size(total)}", style="dim")


def destination(dest: Path, artifact_path: str) -> Path:
    """Where ``artifact_path`` goes under ``dest``; InvalidInput if it would land outside."""
    from shipyard.artifacts.paths import normalize_artifact_path

    relative = normalize_artifact_path(artifact_path)
    target = (dest / relative).resolve()
    # normalize_artifact_path already refuses '..' and absolute paths; resolving also catches
    # a symlink inside DEST that points elsewhere.
    if not target.is_relative_to(dest.resolve()):
        raise InvalidInput(f"artifact path {artifact_path!r} would be written outside {dest}")
    return target


@app.command("get")
def get_artifacts(
    run: Annotated[str, typer.Argument(help=RUN_ARG_HELP)],
    path: Annotated[str | None, typer.Argument(help=PATH_ARG_HELP)] = None,
    dest: Annotated[
        Path,
        typer.Option(
            "--dest",
            "-d",
            file_okay=False,
            help="Folder to download into; files keep their path inside the run.",
        ),
    ] = Path("."),
    to_stdout: Annotated[
        bool, typer.Option("--stdout", help="Write the content of a single file to stdout.")
    ] = False,
) -> None:
    """Download one file, or every file under PATH (default: all), into DEST."""
    run_id, entries = _entries(run, path)
    if not entries:
        where = f" at {path!r}" if path else ""
        raise NotFound(f"run {run_id} has no artifacts{where}")
    blobs = open_blobs()
    if to_stdout:
        if len(entries) != 1:
            raise InvalidInput(
                f"--stdout writes a single file; {path or 'the run'!r} holds {len(entries)} files"
            )
        sys.stdout.flush()
        out = typer.get_binary_stream("stdout")
        with blobs.open(entries[0].digest) as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
        out.flush()
        return
    # Every target is checked before the first byte is written.
    targets = [(entry, destination(dest, entry.path)) for entry in entries]
    for _, target in targets:
        _check_writable(target)
    for entry, target in targets:
        blobs.copy_to(entry.digest, target)
    shown = os.path.relpath(targets[0][1]) if len(targets) == 1 else str(dest)
    total = sum(e.size for e in entries)
    render.err().print(
        f"downloaded {len(targets)} file{'s' * (len(targets) != 1)} "
        f"({render.format_size(total)}) to {shown}",
        markup=False,
    )


def _check_writable(target: str | os.PathLike[str]) -> None:
    """A download target must be a new or regular file, under folders (not files)."""
    path = Path(target)
    if path.is_dir():
        raise InvalidInput(f"cannot download to {str(path)!r}: a folder is in the way")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise InvalidInput(f"cannot download to {str(path)!r}: {str(parent)!r} is a file")


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            min=0,
            help="Keep blobs modified less than this many seconds "
            "ago (protects runs still uploading).",
        ),
    ] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Delete artifact blobs that no run references any more."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from shipyard.artifacts.gc import collect_garbage

    with open_cli_store() as store:
        referenced = store.referenced_digests()
    blobs = open_blobs()
    with Progress(
        SpinnerColumn(),
        TextColumn("scanning blobs"),
        BarColumn(),
        TextColumn("{task.completed} examined"),
        TimeElapsedColumn(),
        console=render.err(),
        transient=True,
    ) as progress:
        task = progress.add_task("gc", total=None)
        report = collect_garbage(
            blobs,
            referenced,
            dry_run=dry_run,
            grace_seconds=grace,
            progress=lambda examined: progress.update(task, completed=examined),
        )
    if as_json:
        render.print_json(
            {
                "deleted": report.deleted,
                "freed_bytes": report.freed_bytes,
                "kept": report.kept,
                "dry_run": report.dry_run,
                "temp_files_removed": report.temp_files_removed,
            }
        )
        return
    console = render.out()
    if dry_run:
        for digest in report.deleted:
            console.print(digest, markup=False)
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {len(report.deleted)} blob{'s' * (len(report.deleted) != 1)} "
        f"({render.format_size(report.freed_bytes)}), kept {report.kept}"
        + (
            f", {verb} {report.temp_files_removed} stale temp "
            + ("file" if report.temp_files_removed == 1 else "files")
            if report.temp_files_removed
            else ""
        ),
        markup=False,
    )
