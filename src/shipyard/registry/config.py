"""Checks declared in ``shipyard.yaml`` beside the code, per model name.

```yaml
models:
  iris-clf:
    target: species
    baseline: "@production"        # the default; "none" validates without one
    slice_by: country              # optional
    checks:
      - metric: accuracy
        min: 0.9
      - no_regression: accuracy
        max_drop: 0.01
        confidence: 0.95
      - latency: {p95_ms: 20, batch_size: 1}
      - signature_compatible
      - predictions_valid
      - custom: my_project.checks:no_empty_predictions
```

A check is a name, or a mapping with one check name as a key whose value is either the
check's first argument (a metric name) or a mapping of its arguments; other keys beside it
are arguments too.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, require

CONFIG_FILE = "shipyard.yaml"
KINDS = (
    "metric",
    "no_regression",
    "latency",
    "signature_compatible",
    "predictions_valid",
    "custom",
)
ENTRY_KEYS = ("baseline", "checks", "slice_by", "target")


@dataclass(frozen=True)
class ModelChecks:
    """What ``shipyard.yaml`` says about validating one model."""

    checks: list[Any]
    target: str | None = None
    baseline: str | None = "@production"
    slice_by: str | None = None
    source: str = ""
    declared: list[str] = field(default_factory=list)


def find_config(start: Path | None = None) -> Path | None:
    """``shipyard.yaml`` in the folder or the nearest parent that has one."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE
        if path.is_file():
            return path
    return None


def load_model_checks(name: str, path: Path | None = None) -> ModelChecks:
    """The checks declared for ``name``; InvalidInput when there is no file or no entry."""
    yaml: Any = require("yaml", "yaml")
    config = path or find_config()
    if config is None:
        raise InvalidInput(
            f"no checks given and no {CONFIG_FILE} here or above; pass checks=[...] or "
            f"declare them under models: {name}: checks: in {CONFIG_FILE}"
        )
    try:
        data = yaml.safe_load(Path(config).read_text()) or {}
    except FileNotFoundError:
        raise InvalidInput(f"no such checks file: {str(config)!r}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read {str(config)!r}: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or name not in models:
        raise InvalidInput(
            f"{config} declares no checks for model {name!r} (under models: {name}: checks:)"
        )
    entry = models[name]
    where = f"{config}: models.{name}"
    if not isinstance(entry, dict) or not isinstance(entry.get("checks"), list):
        raise InvalidInput(f"{where} needs a list under checks:")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise InvalidInput(
            f"{where} has unknown keys {', '.join(unknown)} (known: {', '.join(ENTRY_KEYS)})"
        )
    baseline = entry.get("baseline", "@production")
    if baseline in (None, "none", False):
        baseline = None
    # custom checks name functions of the project beside the file
    with _importable(Path(config).resolve().parent):
        built = [
            build_check(item, f"{where}.checks[{i}]") for i, item in enumerate(entry["checks"])
        ]
    if not built:
        raise InvalidInput(f"{where}.checks is empty")
    return ModelChecks(
        checks=built,
        target=_optional_str(entry, "target", where),
        baseline=str(baseline) if baseline is not None else None,
        slice_by=_optional_str(entry, "slice_by", where),
        source=str(config),
        declared=[str(item) for item in entry["checks"]],
    )


def _optional_str(entry: dict[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{where}.{key} must be a string, got {value!r}")
    return value


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[None]:
    added = str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(folder))


def build_check(item: Any, where: str) -> Any:
    """A Check from its ``shipyard.yaml`` form: a name, or a mapping naming one check."""
    from shipyard.validation import checks

    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if isinstance(item, str):
        kind = item
    elif isinstance(item, dict):
        kinds = [k for k in item if k in KINDS]
        if len(kinds) != 1:
            raise InvalidInput(
                f"{where} must name one check ({', '.join(KINDS)}), got keys {list(item)}"
            )
        kind = kinds[0]
        value = item[kind]
        kwargs = {k: val for k, val in item.items() if k != kind}
        if isinstance(value, dict):
            kwargs.update(value)
        elif value is not None:
            args = [value]
    else:
        raise InvalidInput(f"{where} must be a check name or a mapping, got {item!r}")
    if kind not in KINDS:
        raise InvalidInput(f"{where}: unknown check {kind!r} (known: {', '.join(KINDS)})")
    if kind == "custom":
        if len(args) != 1 or not isinstance(args[0], str) or ":" not in args[0]:
            raise InvalidInput(f"{where}: custom takes 'module:function', got {args!r}")
        return checks.custom(_import(args[0], where), **kwargs)
    try:
        return getattr(checks, kind)(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"{where}: {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None


def _import(spec: str, where: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"{where}: cannot import {spec!r}: {exc}") from None
    except Exception as exc:  # the module itself raised while importing
        raise InvalidInput(f"{where}: importing {spec!r} failed: {exc!r}") from None
