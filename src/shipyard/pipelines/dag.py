"""``@sy.step`` and ``@sy.pipeline``: calling steps inside a pipeline function builds a DAG.

Inside a pipeline being built, a step call runs nothing: it records a node and returns a
lazy handle to the step's output, which later steps take as an argument. A step whose return
annotation is a fixed-length ``tuple[...]`` (or that says ``outputs=N``) returns that many
handles, so ``a, b = split(df)`` works. Outside a pipeline a step is a plain function call,
so steps stay easy to test. Arguments are checked against the step's signature while the DAG
is built, before anything runs.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

_building: contextvars.ContextVar[Dag | None] = contextvars.ContextVar(
    "shipyard_pipeline_dag", default=None
)


class Handle:
    """A step's output that is not computed yet: pass it to other steps."""

    __slots__ = ("index", "node")

    def __init__(self, node: Node, index: int | None) -> None:
        self.node = node
        self.index = index

    def __iter__(self) -> Iterator[Handle]:
        if self.node.outputs is None or self.index is not None:
            raise InvalidInput(
                f"step {self.node.id!r} returns one value, so it cannot be unpacked; annotate "
                "its return as tuple[A, B] (or use @sy.step(outputs=2))"
            )
        return iter([Handle(self.node, i) for i in range(self.node.outputs)])

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output of step {self.node.id!r} is not known while the pipeline is built; "
            "decide on it inside a step, not in the pipeline function"
        )

    @property
    def key(self) -> tuple[str, int | None]:
        return (self.node.id, self.index)

    def __repr__(self) -> str:
        which = "" if self.index is None else f"[{self.index}]"
        return f"<output of step {self.node.id}{which}>"


@dataclass(eq=False)
class Node:
    """One step call in a DAG: the step and its arguments (values or handles)."""

    id: str
    step: Step
    arguments: dict[str, Any]
    outputs: int | None

    @property
    def upstream(self) -> list[Node]:
        seen: dict[str, Node] = {}
        for value in self.arguments.values():
            for handle in _handles(value):
                seen.setdefault(handle.node.id, handle.node)
        return list(seen.values())


def _handles(value: Any) -> Iterator[Handle]:
    """Handles in an argument, also inside lists, tuples and dict values."""
    if isinstance(value, Handle):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _handles(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _handles(item)


@dataclass
class Dag:
    """The nodes of one pipeline call, in the order the steps were called (a topological
    order: a handle exists only after its step was called)."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    result: Any = None
    _calls: dict[str, int] = field(default_factory=dict, repr=False)
    _ids: set[str] = field(default_factory=set, repr=False)

    def add(self, step: Step, arguments: dict[str, Any], outputs: int | None) -> Node:
        # A counter per name and the set of ids: building stays linear in the number of calls.
        n = self._calls.get(step.name, 0) + 1
        node_id = step.name if n == 1 else f"{step.name}_{n}"
        while node_id in self._ids:  # a step literally named like "load_2"
            n += 1
            node_id = f"{step.name}_{n}"
        self._calls[step.name] = n
        self._ids.add(node_id)
        node = Node(node_id, step, arguments, outputs)
        self.nodes.append(node)
        return node

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise InvalidInput(f"pipeline {self.name!r} has no step {node_id!r}")

    def downstream(self, node_ids: set[str]) -> set[str]:
        """``node_ids`` and every node that depends on one of them."""
        out = set(node_ids)
        for node in self.nodes:
            if any(up.id in out for up in node.upstream):
                out.add(node.id)
        return out

    def describe(self) -> dict[str, Any]:
        """The DAG as JSON: nodes with their step, upstream nodes and literal params."""
        return {
            "pipeline": self.name,
            "nodes": [
                {
                    "id": node.id,
                    "step": node.step.name,
                    "upstream": [up.id for up in node.upstream],
                    "outputs": node.outputs,
                }
                for node in self.nodes
            ],
        }


@dataclass(frozen=True)
class StepOptions:
    retries: int = 0
    retry_delay: float = 1.0
    cpus: float = 1.0
    gpus: float = 0.0
    timeout: float | None = None
    cache: bool = True
    reads: tuple[str, ...] = ()
    environment_in_key: bool = True
    outputs: int | None = None


class Step:
    """A function that runs as a step of a pipeline (a child run of the pipeline run)."""

    def __init__(self, fn: Callable[..., Any], name: str, options: StepOptions) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.signature = inspect.signature(fn)
        self.outputs = options.outputs if options.outputs is not None else _tuple_size(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dag = _building.get()
        if dag is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r}: {exc}") from None
        bound.apply_defaults()
        node = dag.add(self, dict(bound.arguments), self.outputs)
        return Handle(node, None)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _tuple_size(fn: Callable[..., Any]) -> int | None:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # annotations that do not resolve (forward references, typos)
        return None
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args and args[-1] is not Ellipsis:
            return len(args)
    return None


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    cpus: float = 1.0,
    gpus: float = 0.0,
    timeout: float | None = None,
    cache: bool = True,
    reads: Sequence[str] = (),
    environment_in_key: bool = True,
    outputs: int | None = None,
) -> Any:
    """Make a function a pipeline step: ``@sy.step`` or ``@sy.step(retries=2, cpus=1)``.

    ``reads``: glob patterns of files the step reads (their content is part of the cache
    key); ``cache=False``: always run; ``environment_in_key=False``: a change of installed
    packages does not invalidate it; ``outputs``: how many values it returns as a tuple
    (default: from a ``tuple[...]`` return annotation).
    """
    if isinstance(reads, str):
        reads = (reads,)
    for what, value, least in (("retries", retries, 0), ("outputs", outputs, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"{what} must be a whole number, got {value!r}")
        if value is not None and value < least:
            raise InvalidInput(f"{what} must be at least {least}, got {value}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}")
    options = StepOptions(
        retries=retries,
        retry_delay=float(retry_delay),
        cpus=float(cpus),
        gpus=float(gpus),
        timeout=None if timeout is None else float(timeout),
        cache=bool(cache),
        reads=tuple(reads),
        environment_in_key=bool(environment_in_key),
        outputs=outputs,
    )

    def wrap(f: Callable[..., Any]) -> Step:
        if not callable(f):
            raise InvalidInput(f"@sy.step decorates a function, got {f!r}")
        return Step(f, name or f.__name__, options)

    return wrap(fn) if fn is not None else wrap


class Pipeline:
    """A function whose step calls form a DAG; ``.run(**params)`` executes it."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's parameters with defaults; unknown or missing ones -> InvalidInput."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            known = ", ".join(self.signature.parameters) or "none"
            raise InvalidInput(f"pipeline {self.name!r}: {exc} (its parameters: {known})") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, **params: Any) -> Dag:
        """The DAG this pipeline makes with ``params``, without running anything."""
        arguments = self.bind(params)
        dag = Dag(self.name)
        token = _building.set(dag)
        try:
            dag.result = self.fn(**arguments)
        finally:
            _building.reset(token)
        if not dag.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no steps")
        return dag

    def run(
        self,
        *,
        executor: str = "inline",
        max_workers: int | None = None,
        cache: bool = True,
        on_event: Callable[[str, Any], None] | None = None,
        **params: Any,
    ) -> Any:
        """Build the DAG with ``params`` and run it; returns a PipelineResult.

        ``executor``: ``"inline"`` (one step after another in this process) or
        ``"processes"`` (independent steps at once, up to ``max_workers``, each in its own
        process, stopped at its ``timeout``). ``on_event(kind, subject)`` is called with
        ``("start", node)`` before a step and ``("end", outcome)`` after it.
        """
        from shipyard.pipelines.runner import run_pipeline

        return run_pipeline(
            self,
            params,
            executor=executor,
            max_workers=max_workers,
            cache=cache,
            on_event=on_event,
        )

    def resume(
        self,
        run_id: str,
        *,
        executor: str = "inline",
        max_workers: int | None = None,
        on_event: Callable[[str, Any], None] | None = None,
    ) -> Any:
        """Run again with the parameters of the pipeline run ``run_id``, reusing the outputs
        of its steps that finished: only the failed and skipped steps run (and, as in any
        run, steps that are not cache hits)."""
        from shipyard.pipelines.runner import run_pipeline, stored_params

        return run_pipeline(
            self,
            stored_params(run_id),
            executor=executor,
            max_workers=max_workers,
            on_event=on_event,
            resume_from=run_id,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise InvalidInput(
            f"run a pipeline with {self.name}.run(param=value, ...), not by calling it"
        )

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def pipeline(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Make a function a pipeline: ``@sy.pipeline`` or ``@sy.pipeline(name="training")``."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name or f.__name__)

    return wrap(fn) if fn is not None else wrap
