"""`shipyard lineage REF`: what produced a run's inputs and what used its outputs, or which runs
hold an artifact file with a given digest.

A step's inputs are the outputs of its upstream steps in the same pipeline run (the DAG in
``shipyard/pipeline.json``); its outputs are used by its downstream steps there, and by every
later step run that reused them from the cache (``shipyard.cached_from`` names the run that
made them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.pipelines import (
    PIPELINE_TAG,
    children_of,
    read_dag,
    search_all,
    step_status,
)
from shipyard.cli.runs import open_cli_store, resolve_run
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.store.base import Store
    from shipyard.store.entities import Run

CACHED_FROM = "shipyard.cached_from"
MIN_DIGEST_PREFIX = 8
_HEX = re.compile(r"[0-9a-f]+")


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="A run id (or a unique prefix), or an artifact file's sha256 digest (or a "
            "prefix of at least 8 characters; 'sha256:...' to mean a digest for sure).",
            metavar="RUN|DIGEST",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What produced a run's inputs and what used its outputs; or which runs hold a file."""
    text = ref.strip().lower()
    forced = text.startswith("sha256:")
    text = text.removeprefix("sha256:")
    if not _HEX.fullmatch(text) or len(text) > 64 or len(text) < (8 if forced else 4):
        raise InvalidInput(
            f"not a run id (prefix of 4+ hex characters) or a sha256 digest (prefix of "
            f"{MIN_DIGEST_PREFIX}+): {ref!r}"
        )
    with open_cli_store() as store:
        if forced or len(text) > 32:
            data = digest_lineage(store, text)
        else:
            try:
                data = run_lineage(store, resolve_run(store, text))
            except NotFound:
                if len(text) < MIN_DIGEST_PREFIX:
                    raise
                data = digest_lineage(store, text, also_run=True)
    if as_json:
        render.print_json(data)
    elif data["kind"] == "run":
        _print_run(data)
    else:
        _print_digest(data)


# -- a run -----------------------------------------------------------------------------------


def run_lineage(store: Store, record: Run) -> dict[str, Any]:
    """A run's place in its pipeline: the step runs it took from and the ones that took from it."""
    data: dict[str, Any] = {
        "kind": "run",
        "run": _describe(record),
        "outputs_from": record.tags.get(CACHED_FROM),
        "inputs": [],
        "used_by": [],
    }
    if PIPELINE_TAG in record.tags:  # a pipeline run: what its steps reused, who reused them
        children = children_of(store, [record.id])
        data["steps"] = [_describe(c) for c in children[::-1]]
        data["inputs"] = [
            {**_describe(c), "relation": "reused"} for c in children[::-1] if CACHED_FROM in c.tags
        ]
        data["used_by"] = _cache_hits(store, [c.id for c in children if CACHED_FROM not in c.tags])
        return data
    if record.parent_id and "shipyard.step" in record.tags:
        parent = store.get_run(record.parent_id)
        nodes = read_dag(store, parent.id) or []
        siblings = {c.name: c for c in sorted(children_of(store, [parent.id]), key=_started)}
        node = next((n for n in nodes if n["id"] == record.name), None)
        for up in node["upstream"] if node else []:
            data["inputs"].append(_sibling(up, siblings.get(up), parent, "upstream"))
        for n in nodes:
            if record.name in n.get("upstream", []):
                data["used_by"].append(
                    _sibling(n["id"], siblings.get(n["id"]), parent, "downstream")
                )
    data["used_by"] += _cache_hits(store, [record.id])
    return data


def _started(run: Run) -> float:
    return run.start_time


def _describe(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name,
        "status": "cached" if CACHED_FROM in run.tags else run.status,
        "step": run.tags.get("shipyard.step"),
        "pipeline": run.tags.get(PIPELINE_TAG),
        "pipeline_run": run.parent_id if "shipyard.step" in run.tags else None,
        "cached_from": run.tags.get(CACHED_FROM),
        "start_time": run.start_time,
    }


def _sibling(node: str, run: Run | None, parent: Run, relation: str) -> dict[str, Any]:
    if run is None:
        return {"run_id": None, "name": node, "status": step_status(None, parent),
                "pipeline_run": parent.id, "cached_from": None, "relation": relation}  # fmt: skip
    return {**_describe(run), "relation": relation}


def _cache_hits(store: Store, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Step runs that reused the outputs of these runs instead of running."""
    hits: list[Run] = []
    for i in range(0, len(run_ids), 500):
        # ids come from the store: 32 hex characters, safe to quote
        quoted = ", ".join(f"'{run_id}'" for run_id in run_ids[i : i + 500])
        hits.extend(search_all(store, f'tags."{CACHED_FROM}" IN ({quoted})'))
    return [{**_describe(run), "relation": "cache hit"} for run in sorted(hits, key=_started)]


# -- a digest --------------------------------------------------------------------------------


def digest_lineage(store: Store, prefix: str, *, also_run: bool = False) -> dict[str, Any]:
    """The runs whose artifacts hold a file with this digest: the step that made it, and the
    cache hits that reused it."""
    found = store.find_artifacts(prefix)
    if not found:
        what = "run id or artifact digest" if also_run else "artifact digest"
        raise NotFound(f"no {what} starts with {prefix!r}")
    digests = sorted({entry.digest for _, entry in found})
    if len(digests) > 1:
        shown = ", ".join(d[:16] for d in digests[:5])
        raise InvalidInput(
            f"digest prefix {prefix!r} is ambiguous: {shown}{' ...' * (len(digests) > 5)}"
        )
    ids = list(dict.fromkeys(run_id for run_id, _ in found))
    quoted = ", ".join(f"'{run_id}'" for run_id in ids)  # from the store: hex, safe to quote
    runs = {r.id: r for r in search_all(store, f"run_id IN ({quoted})")}
    holders = []
    for run_id, entry in found:
        run = runs.get(run_id)
        if run is None:  # a run of a deleted experiment
            continue
        holders.append({**_describe(run), "path": entry.path})
    # the run that made the file first, then the ones that reused it, oldest first
    holders.sort(key=lambda h: (h["cached_from"] is not None, h["start_time"]))
    return {"kind": "digest", "digest": digests[0], "size": found[0][1].size, "runs": holders}


# -- text ------------------------------------------------------------------------------------


def _print_run(data: dict[str, Any]) -> None:
    console = render.out()
    run = data["run"]
    rows: list[tuple[str, Any]] = [("run", f"{run['run_id']} ({run['name']})")]
    if run["step"]:
        rows.append(("step", f"{run['step']} of pipeline run {run['pipeline_run']}"))
    if run["pipeline"]:
        rows.append(("pipeline", run["pipeline"]))
    if data["outputs_from"]:
        rows.append(("outputs", f"reused from run {data['outputs_from']} (cache hit)"))
    console.print(render.key_value_table(rows))
    if "steps" in data:
        render.section(console, "steps", _runs_table(data["steps"], how=False))
    title = "reused outputs of" if "steps" in data else "inputs from"
    render.section(console, title, _runs_table(data["inputs"]) if data["inputs"] else _none())
    render.section(console, "used by", _runs_table(data["used_by"]) if data["used_by"] else _none())


def _print_digest(data: dict[str, Any]) -> None:
    console = render.out()
    console.print(
        render.key_value_table(
            [("digest", data["digest"]), ("size", render.format_size(data["size"]))]
        )
    )
    t = render.table("run", "name", "path", "status", "pipeline run", "cached from")
    for h in data["runs"]:
        t.add_row(
            render.short_id(h["run_id"]), h["name"], h["path"], render.status_text(h["status"]),
            render.short_id(h["pipeline_run"]) if h["pipeline_run"] else "",
            render.short_id(h["cached_from"]) if h["cached_from"] else "",
        )  # fmt: skip
    render.section(console, "held by", t)


def _runs_table(rows: Sequence[dict[str, Any]], how: bool = True) -> Any:
    t = render.table("step", "run", "status", "pipeline run", "cached from", *(["how"] * how))
    for r in rows:
        t.add_row(
            r["name"],
            render.short_id(r["run_id"]) if r["run_id"] else "-",
            render.status_text(r["status"]),
            render.short_id(r["pipeline_run"]) if r.get("pipeline_run") else "",
            render.short_id(r["cached_from"]) if r.get("cached_from") else "",
            *([r.get("relation", "")] * how),
        )
    return t


def _none() -> Text:
    return Text("none", style="dim")
