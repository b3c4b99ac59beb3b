"""Running a pipeline's DAG: one child run per step, outputs stored by type, a cache key per
step execution, and cache hits that reuse outputs without running the code.

The pipeline is a run; each step execution is a child run holding the step's parameters,
what it logs, its status, duration and output files (``outputs/<n>/...``). A step's outputs
are stored, and its cache entry written, only after it succeeded, so nothing half-written is
ever a hit. A failing step fails only the steps that depend on it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.dag import Dag, Handle, Node, Pipeline, Step
from shipyard.store.entities import ArtifactEntry

EXECUTORS = ("inline", "processes", "ray")
EventHook = Callable[[str, Any], None]  # ("start", Node) before a step, ("end", StepOutcome)
FINISHED, FAILED, CACHED, SKIPPED = "finished", "failed", "cached", "skipped"


@dataclass
class Output:
    """A stored step output: its files (relative to the output's folder) and how to read it."""

    files: list[ArtifactEntry]
    meta: dict[str, Any]

    @property
    def digest(self) -> str:
        from shipyard.store.sql.registry import manifest_digest

        return manifest_digest(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [vars(f) for f in self.files], "meta": self.meta}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Output:
        return cls([ArtifactEntry(**f) for f in data["files"]], dict(data["meta"]))


@dataclass
class StepOutcome:
    node: str
    step: str
    status: str
    run_id: str | None = None
    cached_from: str | None = None
    duration: float = 0.0
    error: str | None = None
    cache_key: str | None = None
    outputs: list[Output] = field(default_factory=list)


@dataclass
class PipelineResult:
    """What a pipeline run did: its run id, status, each step's outcome, and its value."""

    run_id: str
    status: str
    steps: dict[str, StepOutcome]
    value: Any = None

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for outcome in self.steps.values():
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return f"<PipelineResult {self.run_id[:8]} {self.status}: {summary}>"


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    executor: str = "inline",
    max_workers: int | None = None,
    cache: bool = True,
    on_event: EventHook | None = None,
    resume_from: str | None = None,
) -> PipelineResult:
    import shipyard as sy

    if executor not in EXECUTORS:
        raise InvalidInput(
            f"unknown executor {executor!r} (this Shipyard has: {', '.join(EXECUTORS)})"
        )
    if executor == "processes":
        from shipyard.pipelines.processes import _context

        _context()  # the forkserver starts now, while the pipeline run is being opened
    arguments = pipeline.bind(params)
    dag = pipeline.build(**arguments)
    tags = {
        "shipyard.pipeline": pipeline.name,
        "shipyard.pipeline.source": f"{pipeline.fn.__module__}:{pipeline.fn.__qualname__}",
        "shipyard.executor": executor,
    }
    resumed = {}
    if resume_from is not None:
        resumed = finished_steps(resume_from)
        tags["shipyard.resumed_from"] = resume_from
    logged = {k: _shown(v) for k, v in arguments.items()}
    with sy.start_run(name=pipeline.name, params=logged, tags=tags) as run:
        run.log_dict(dag.describe(), "shipyard/pipeline.json")
        with contextlib.suppress(InvalidInput):  # params JSON cannot hold: no resume by CLI
            run.log_text(json.dumps(arguments, allow_nan=True), "shipyard/params.json")
        runner = _Runner(dag, cache=cache, on_event=on_event, resumed=resumed)
        if executor == "processes":
            from shipyard.pipelines.processes import ProcessScheduler

            ProcessScheduler(runner, max_workers).run_all(run.id, run.info.experiment_id)
        elif executor == "ray":
            from shipyard.pipelines.ray_executor import RayScheduler

            RayScheduler(runner, max_workers).run_all(run.id, run.info.experiment_id)
        else:
            runner.run_all()
        failed = [o for o in runner.outcomes.values() if o.status == FAILED]
        status = FAILED if failed else FINISHED
        value = runner.resolve(dag.result) if not failed else None
        if failed:
            run.end("failed", f"steps failed: {', '.join(o.node for o in failed)}")
    return PipelineResult(run.id, status, runner.outcomes, value)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 500 else text[:497] + "..."


class _Runner:
    """Runs the nodes of one DAG in the current process, in order."""

    def __init__(
        self,
        dag: Dag,
        *,
        cache: bool,
        on_event: EventHook | None = None,
        resumed: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        from shipyard.tracking.tracker import get_tracker

        self.dag = dag
        self.cache = cache
        self.on_event = on_event
        self.resumed = resumed or {}
        self.tracker = get_tracker()
        self.outcomes: dict[str, StepOutcome] = {}
        self.values: dict[tuple[str, int | None], Any] = {}

    def notify(self, event: str, subject: Any) -> None:
        if self.on_event is not None:
            self.on_event(event, subject)

    def remember(self, node: Node, outputs: list[Output]) -> None:
        """Outputs stored elsewhere (a worker process), read when a later step needs them."""
        for index, output in enumerate(outputs):
            self.values[(node.id, self._slot(node, index))] = _Lazy(self.tracker, output)

    def run_all(self) -> None:
        for node in self.dag.nodes:
            blocked = [
                up.id for up in node.upstream if self.outcomes[up.id].status in (FAILED, SKIPPED)
            ]
            if blocked:
                self.outcomes[node.id] = StepOutcome(
                    node.id, node.step.name, SKIPPED, error=f"upstream failed: {', '.join(blocked)}"
                )
                self.notify("end", self.outcomes[node.id])  # as the processes executor does
                continue
            self.notify("start", node)
            self.outcomes[node.id] = self.run_node(node)
            self.notify("end", self.outcomes[node.id])

    # -- one node ----------------------------------------------------------------------------

    def run_node(self, node: Node) -> StepOutcome:
        from shipyard.pipelines.keys import step_cache_key

        key = step_cache_key(node, self.input_digests(node))
        entry = self.lookup(node, key)
        if entry is not None:
            return self.reuse(node, key, entry)  # its inputs are never read
        arguments = {name: self.resolve(value) for name, value in node.arguments.items()}
        return self.execute(node, key, arguments)

    def lookup(self, node: Node, key: str) -> dict[str, Any] | None:
        """Outputs to reuse for ``node``: from the run being resumed, or the cache."""
        if node.id in self.resumed:
            return self.resumed[node.id]
        if self.cache and node.step.options.cache:
            return self.tracker.store.get_step_cache(key)
        return None

    def input_digests(self, node: Node) -> dict[str, str]:
        """For each argument that is a step output, the digest of its stored files."""
        out: dict[str, str] = {}
        for name, value in node.arguments.items():
            parts = [self.outcomes[h.node.id].outputs[h.index or 0].digest for h in _handles(value)]
            if parts:
                out[name] = ",".join(parts)
        return out

    def reuse(self, node: Node, key: str, entry: dict[str, Any]) -> StepOutcome:
        import shipyard as sy

        outputs = [Output.from_dict(o) for o in entry["outputs"]]
        tags = {
            "shipyard.step": node.step.name,
            "shipyard.cache_key": key,
            "shipyard.cached_from": entry["run_id"],
        }
        with sy.start_run(name=node.id, nested=True, tags=tags) as run:
            run.log_params(self.params_of(node))
            record_outputs(run, outputs)
        self.remember(node, outputs)
        return StepOutcome(
            node.id, node.step.name, CACHED, run.id, entry["run_id"], 0.0, None, key, outputs
        )

    def execute(self, node: Node, key: str, arguments: dict[str, Any]) -> StepOutcome:
        import shipyard as sy

        step = node.step
        tags = {"shipyard.step": step.name, "shipyard.cache_key": key}
        started = time.perf_counter()
        run = sy.start_run(name=node.id, nested=True, tags=tags)
        try:
            run.log_params(self.params_of(node))
            result = _call_with_retries(step, arguments, run)
            values = _split(node, result)
            outputs = [self.store_output(value) for value in values]
            record_outputs(run, outputs)
        except Exception as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            run.end("failed", exc)
            print(f"step {node.id!r} failed:\n{text}", file=sys.stderr, end="")
            return StepOutcome(
                node.id,
                step.name,
                FAILED,
                run.id,
                None,
                time.perf_counter() - started,
                f"{type(exc).__name__}: {exc}",
                key,
            )
        except BaseException:
            run.end("killed")
            raise
        run.end("finished")
        if step.options.cache:
            # the cache entry names a stored, finished run: the end is committed first (a
            # no-op unless group commit left it to the background writer)
            self.tracker.writer.flush()
            self.tracker.store.put_step_cache(
                key, run.id, step.name, [o.to_dict() for o in outputs]
            )
        for index, value in enumerate(values):
            self.values[(node.id, self._slot(node, index))] = value
        return StepOutcome(
            node.id,
            step.name,
            FINISHED,
            run.id,
            None,
            time.perf_counter() - started,
            None,
            key,
            outputs,
        )

    @staticmethod
    def _slot(node: Node, index: int) -> int | None:
        return None if node.outputs is None else index

    def params_of(self, node: Node) -> dict[str, str]:
        return {
            name: _shown(value)
            for name, value in node.arguments.items()
            if not any(True for _ in _handles(value))
        }

    def store_output(self, value: Any) -> Output:
        return _store(self.tracker.blobs, value)

    @staticmethod
    def store_output_in(run: Any, value: Any) -> Output:
        return _store(run._tracker.blobs, value)

    # -- values --------------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """``value`` with every handle replaced by the output it stands for."""
        if isinstance(value, Handle):
            found = self.values[value.key]
            return found.load() if isinstance(found, _Lazy) else found
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value


def _store(blobs: Any, value: Any) -> Output:
    from shipyard.artifacts.folders import upload_folder
    from shipyard.pipelines.materializers import encode_small, save_output

    small = encode_small(value)
    if small is not None:  # one file made in memory: no folder to create, write and remove
        name, data, meta = small
        digest, size = blobs.put_bytes(data)
        return Output([ArtifactEntry(name, digest, size)], meta)
    with tempfile.TemporaryDirectory(prefix="shipyard-output-") as tmp:
        meta = save_output(value, Path(tmp))
        files = upload_folder(blobs, Path(tmp))
    return Output(files, meta)


def _load_stored(output: Mapping[str, Any]) -> Any:
    """A stored output, read back through this process's tracker."""
    from shipyard.tracking.tracker import get_tracker

    return _Lazy(get_tracker(), Output.from_dict(output)).load()


class _Lazy:
    """A cached output, read from the artifact store the first time a step needs it."""

    def __init__(self, tracker: Any, output: Output) -> None:
        self.tracker = tracker
        self.output = output
        self._value: Any = None
        self._loaded = False

    def load(self) -> Any:
        if not self._loaded:
            from shipyard.artifacts.folders import materialize
            from shipyard.pipelines.materializers import SMALL, decode_small, load_output

            files = self.output.files
            if self.output.meta.get("materializer") in SMALL and len(files) == 1:
                # one small file: read straight from its blob, no cache folder
                data = self.tracker.blobs.read_bytes(files[0].digest)
                self._value = decode_small(data, self.output.meta)
                self._loaded = True
                return self._value
            folder = materialize(
                self.tracker.blobs,
                files,
                self.output.digest,
                "a cached step output",
                files[0].path if files else "",
            )
            self._value = load_output(folder, self.output.meta)
            self._loaded = True
        return self._value


def _handles(value: Any) -> list[Handle]:
    from shipyard.pipelines.dag import _handles as walk

    return list(walk(value))


OUTPUTS_FILE = "shipyard/outputs.json"


OUTPUTS_TAG = "shipyard.outputs"
MAX_OUTPUTS_TAG = 4000  # characters; a longer description goes to OUTPUTS_FILE


def record_outputs(run: Any, outputs: list[Output]) -> None:
    """The outputs' files as the run's artifacts, and how to read them (for resume): in a
    tag when short (written with the run, no file), else in ``OUTPUTS_FILE``."""
    run._record(_as_artifacts(outputs))
    text = json.dumps([o.to_dict() for o in outputs])
    if len(text) <= MAX_OUTPUTS_TAG:
        run.set_tags({OUTPUTS_TAG: text})
    else:
        run.log_text(text, OUTPUTS_FILE)


def stored_params(run_id: str) -> dict[str, Any]:
    """The parameters a pipeline run was called with, as it stored them."""
    from shipyard.tracking.tracker import get_tracker

    tracker = get_tracker()
    tracker.writer.flush()
    run = tracker.store.get_run(run_id)
    if "shipyard.pipeline" not in run.tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run")
    found = tracker.store.list_artifacts(run_id, prefix="shipyard/params.json")
    if not found:
        raise InvalidInput(
            f"pipeline run {run_id} stored no parameters (they were not JSON); run it again "
            "with .run(...) instead of resuming it"
        )
    params: dict[str, Any] = json.loads(tracker.blobs.read_bytes(found[0].digest))
    return params


def finished_steps(run_id: str) -> dict[str, dict[str, Any]]:
    """For a pipeline run, each step that finished (or was a cache hit) and its outputs:
    what a resume reuses."""
    from shipyard.tracking.tracker import get_tracker

    tracker = get_tracker()
    tracker.writer.flush()
    store = tracker.store
    store.get_run(run_id)  # NotFound names it
    children = store.search_runs(None, f"parent_id = '{run_id}'", max_results=50_000).runs
    done: dict[str, dict[str, Any]] = {}
    for child in children:
        if child.status != "finished":
            continue
        if OUTPUTS_TAG in child.tags:
            outputs = json.loads(child.tags[OUTPUTS_TAG])
        else:
            entries = {a.path: a for a in store.list_artifacts(child.id, prefix=OUTPUTS_FILE)}
            if OUTPUTS_FILE not in entries:
                continue
            outputs = json.loads(tracker.blobs.read_bytes(entries[OUTPUTS_FILE].digest))
        source = child.tags.get("shipyard.cached_from") or child.id
        done[child.name] = {"run_id": source, "outputs": outputs}
    return done


def _as_artifacts(outputs: list[Output]) -> list[ArtifactEntry]:
    return [
        ArtifactEntry(f"outputs/{i}/{f.path}", f.digest, f.size)
        for i, output in enumerate(outputs)
        for f in output.files
    ]


def _split(node: Node, result: Any) -> list[Any]:
    if node.outputs is None:
        return [result]
    if not isinstance(result, tuple) or len(result) != node.outputs:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise InvalidInput(f"step {node.id!r} should return a tuple of {node.outputs}, got {got}")
    return list(result)


OUTPUT_LOG = "shipyard/output.log"
MAX_CAPTURED = 5_000_000  # characters of a step's printed output kept on its run


class _Tee(io.TextIOBase):
    """Writes to the real stream and keeps a copy (up to a limit) for the step's run."""

    def __init__(self, stream: Any, kept: list[str], lock: threading.Lock) -> None:
        self.stream, self.kept, self.lock = stream, kept, lock

    def write(self, text: str) -> int:
        with self.lock:
            if sum(map(len, self.kept)) < MAX_CAPTURED:
                self.kept.append(text)
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()


def _call_with_retries(step: Step, arguments: dict[str, Any], run: Any) -> Any:
    """Call the step while its run is the active one (so sy.log_* go to it), keeping what it
    prints as the run's ``shipyard/output.log``; retry with exponential backoff, recording
    each failed attempt on the run."""
    kept: list[str] = []
    lock = threading.Lock()
    attempts = step.options.retries + 1
    try:
        with (
            contextlib.redirect_stdout(_Tee(sys.stdout, kept, lock)),
            contextlib.redirect_stderr(_Tee(sys.stderr, kept, lock)),
        ):
            for attempt in range(attempts):
                try:
                    return step.fn(**arguments)
                except Exception as exc:
                    if attempt == attempts - 1:
                        raise
                    reason = f"{type(exc).__name__}: {exc}"[:500]
                    run.set_tag(f"shipyard.retry.{attempt + 1}", reason)
                    time.sleep(step.options.retry_delay * 2**attempt)
    finally:
        if kept:
            run.log_text("".join(kept), OUTPUT_LOG)
    raise AssertionError("unreachable")
