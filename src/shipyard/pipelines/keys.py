"""A step execution's cache key: its code (and the project code it calls), its parameter
values, its inputs' digests, the files it declares, and the environment."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from shipyard.pipelines.dag import Handle, Node, Step, _handles


@functools.lru_cache(maxsize=1024)
def _code(step: Step) -> str:
    from shipyard.pipelines.fingerprint import code_fingerprint

    return code_fingerprint(step.fn)[0]


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    from shipyard.tracking.capture import capture_environment

    return capture_environment().digest


def step_cache_key(node: Node, inputs: dict[str, str]) -> str:
    """The key under which ``node``'s outputs are cached; ``inputs`` maps each argument fed
    by other steps to the digests of their stored outputs."""
    from shipyard.pipelines.fingerprint import cache_key, files_fingerprint, value_fingerprint

    step = node.step
    params = {
        name: value_fingerprint(value)
        for name, value in node.arguments.items()
        if not _has_handles(value)
    }
    files = None
    if step.options.reads:
        # Patterns are relative to the folder the pipeline runs in, like open() would be.
        files = files_fingerprint(step.options.reads, Path.cwd())[0]
    environment = _environment() if step.options.environment_in_key else None
    return cache_key(
        code=_code(step), params=params, inputs=inputs, files=files, environment=environment
    )


def _has_handles(value: Any) -> bool:
    return isinstance(value, Handle) or any(True for _ in _handles(value))
