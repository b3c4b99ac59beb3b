"""What differs between two model versions: attributes, params, metrics, signature, packages."""

from __future__ import annotations

import contextlib
from typing import Any

from shipyard.errors import NotFound
from shipyard.store.base import Store
from shipyard.store.entities import ModelVersion, Run


def diff_versions(store: Store, a: ModelVersion, b: ModelVersion) -> list[dict[str, Any]]:
    """Rows ``{kind, key, a, b}`` for everything that differs (None: absent on that side)."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, left: dict[str, Any], right: dict[str, Any]) -> None:
        for key in sorted(set(left) | set(right)):
            if left.get(key) != right.get(key):
                rows.append({"kind": kind, "key": key, "a": left.get(key), "b": right.get(key)})

    run_a, run_b = _run(store, a), _run(store, b)
    add("version", _attributes(a, run_a), _attributes(b, run_b))
    add("param", run_a.params if run_a else {}, run_b.params if run_b else {})
    add("metric", run_a.metrics if run_a else {}, run_b.metrics if run_b else {})
    add("signature", _columns(a), _columns(b))
    add("package", _packages(store, run_a), _packages(store, run_b))
    return rows


def _attributes(v: ModelVersion, run: Run | None) -> dict[str, Any]:
    return {
        "flavor": v.flavor,
        "files digest": v.digest[:12],
        "run": v.run_id,
        "git commit": run.tags.get("shipyard.git.commit") if run else None,
        "created by": v.created_by,
    }


def _run(store: Store, version: ModelVersion) -> Run | None:
    if version.run_id is None:
        return None
    with contextlib.suppress(NotFound):
        return store.get_run(version.run_id)
    return None


def _columns(version: ModelVersion) -> dict[str, Any]:
    sig = version.signature or {}
    if "tensor" in sig:
        return {"tensor": f"{sig['tensor']['dtype']} {tuple(sig['tensor']['shape'])}"}
    return {c["name"]: c["dtype"] for c in sig.get("columns", [])}


def _packages(store: Store, run: Run | None) -> dict[str, Any]:
    digest = run.tags.get("shipyard.env.digest") if run else None
    if not digest:
        return {}
    try:
        env = store.get_environment(digest)
    except NotFound:
        return {}
    out: dict[str, Any] = {"(python)": env.python}
    for spec in env.packages:
        name, _, version = spec.partition("==")
        out[name] = version
    return out
