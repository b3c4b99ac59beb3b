"""Finding the pipeline `shipyard pipeline run MODULE:ATTR` names, and reading its `-p` values.

The module is imported the way ``python -m`` would: the current folder comes first on
sys.path (a ``path/to/file.py`` is imported by its name from its own folder), and stays there
while the command runs, so the project's modules import and worker processes can import the
steps again.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import traceback
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.pipelines.dag import Pipeline

_NAME_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_SIMPLE = (bool, int, float, str)
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def load_pipeline(ref: str) -> Pipeline:
    """The ``@sy.pipeline`` object ``MODULE:ATTR`` (or ``path/to/file.py:ATTR``) names."""
    from shipyard.pipelines.dag import Pipeline, Step

    where, colon, attr = ref.rpartition(":")
    if not colon or not where or not _NAME_RE.fullmatch(attr):
        raise InvalidInput(
            f"expected MODULE:ATTR, e.g. pipelines:training or src/flows.py:training; got {ref!r}"
        )
    is_file = where.endswith(".py") or "/" in where or os.sep in where
    module = _import_file(where) if is_file else _import_module(where)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise NotFound(f"module {module.__name__!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Pipeline):
        what = (
            "a step (@sy.step), not a pipeline; run the @sy.pipeline that calls it"
            if isinstance(obj, Step)
            else f"{_kind(obj)}, not a pipeline (decorate the function with @sy.pipeline)"
        )
        raise InvalidInput(f"{ref} is {what}")
    return obj


def _kind(obj: Any) -> str:
    if isinstance(obj, types.FunctionType):
        return "a plain function"
    if isinstance(obj, types.ModuleType):
        return "a module"
    return f"of type {type(obj).__name__}"


@contextlib.contextmanager
def project_imports() -> Iterator[None]:
    """The current folder first on sys.path while the command runs, as ``python -m`` has it
    (worker processes copy sys.path); sys.path as it was afterwards."""
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        yield
    finally:
        sys.path[:] = saved


def _import_module(name: str) -> types.ModuleType:
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(f"not a module name: {name!r} (a dotted name, or a path to a .py file)")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise NotFound(f"no module named {name!r} in {os.getcwd()} or on sys.path") from None
        raise _import_failed(name, exc) from None
    except Exception as exc:  # the module raised while it was imported
        raise _import_failed(name, exc) from None


def _import_file(text: str) -> types.ModuleType:
    path = Path(text)
    if not path.is_file():
        raise NotFound(f"no file {text!r}")
    if path.suffix != ".py":
        raise InvalidInput(f"{text!r} is not a .py file")
    # Imported by its name from its own folder, as `python path/to/file.py` would see it, so
    # its neighbours import and worker processes can import it again.
    name, path = path.stem, path.resolve()
    loaded = getattr(sys.modules.get(name), "__file__", None)
    if loaded and Path(loaded).resolve() != path:
        raise InvalidInput(
            f"cannot import {text}: a module named {name!r} is imported already "
            f"({loaded}); rename the file"
        )
    sys.path.insert(0, str(path.parent))  # until the command ends: see project_imports()
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise _import_failed(text, exc) from None


def _import_failed(name: str, exc: BaseException) -> InvalidInput:
    where = ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
    if frames and not isinstance(exc, SyntaxError):  # a SyntaxError names its line itself
        where = f" ({os.path.relpath(frames[-1].filename)}, line {frames[-1].lineno})"
    return InvalidInput(f"importing {name!r} failed: {type(exc).__name__}: {exc}{where}")


# -- parameters ------------------------------------------------------------------------------


def parse_params(pipeline: Pipeline, items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as the pipeline's parameters: converted to the type its function
    declares (annotation, else default) when that is bool/int/float/str, else read as JSON,
    else kept as text. Unknown names pass through, for the pipeline to refuse."""
    hints = _hints(pipeline)
    params: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier():
            raise InvalidInput(f"-p takes NAME=VALUE, got {item!r}")
        if name in params:
            raise InvalidInput(f"-p {name} is given twice")
        kind, optional = _declared_type(pipeline, name, hints.get(name))
        params[name] = _convert(name, text, kind, optional)
    return params


def _hints(pipeline: Pipeline) -> dict[str, Any]:
    try:
        return typing.get_type_hints(pipeline.fn)
    except Exception:  # annotations that do not resolve: take the simple ones by name
        names: dict[str, Any] = {t.__name__: t for t in _SIMPLE}
        return {
            p.name: names.get(p.annotation) if isinstance(p.annotation, str) else p.annotation
            for p in pipeline.signature.parameters.values()
        }


def _declared_type(pipeline: Pipeline, name: str, hint: Any) -> tuple[type | None, bool]:
    """The simple type a parameter takes, and whether it may be None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] in _SIMPLE:
            return rest[0], True
    if hint in _SIMPLE:
        return hint, False
    parameter = pipeline.signature.parameters.get(name)
    if hint is None and parameter is not None and type(parameter.default) in _SIMPLE:
        return type(parameter.default), False
    return None, False


def _convert(name: str, text: str, kind: type | None, optional: bool) -> Any:
    word = text.strip().lower()
    if optional and word in ("none", "null"):
        return None
    if kind is str:
        return text
    if kind is bool:
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise InvalidInput(f"-p {name}: expected true or false (yes/no, 1/0), got {text!r}")
    if kind is int or kind is float:
        try:
            return kind(text.strip())
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise InvalidInput(f"-p {name}: expected {what}, got {text!r}") from None
    try:
        return json.loads(text)
    except ValueError:
        return text
