"""Which files hold the user's project code, as seen from one step.

Project code: files under the project root (the nearest folder up from the step's file holding
pyproject.toml, setup.py or .git) and outside the standard library, site-packages and the
virtual environment; functions typed into a REPL count when the step has no file. Shipyard's own
code never counts: its version is in the environment digest, like every installed package.
"""

from __future__ import annotations

import functools
import inspect
import os
import site
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any

import shipyard

_PROJECT_MARKERS = ("pyproject.toml", "setup.py", ".git")


def _defining_file(obj: Any) -> str | None:
    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    return getattr(module, "__file__", None)


@functools.lru_cache(maxsize=256)
def _project_root(start: str) -> str:
    folder = start
    while True:
        if any(os.path.exists(os.path.join(folder, m)) for m in _PROJECT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(getattr(site, "getsitepackages", list)())
    dirs.add(site.getusersitepackages())
    dirs.add(os.path.dirname(os.path.abspath(shipyard.__file__)))  # shipyard itself
    return tuple(sorted(_realpath(d) for d in dirs if d))


_realpath = functools.lru_cache(maxsize=4096)(os.path.realpath)


class _Scope:
    """Which files hold the user's project code, as seen from one step."""

    def __init__(self, target: Any) -> None:
        filename = _defining_file(target) or ""
        self.interactive = not os.path.isfile(filename)
        start = os.getcwd() if self.interactive else os.path.dirname(os.path.abspath(filename))
        root = _realpath(_project_root(start))
        self.root = root
        # A virtual environment inside the project is not project code; a prefix holding the
        # project (/usr for /usr/src/app) must not exclude it, so prefixes count only then.
        prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
        extra = (_realpath(p) for p in prefixes if p)
        self.excluded = _library_dirs() + tuple(p for p in extra if not _under(root, p))

    @staticmethod
    def is_installed(obj: Any) -> bool:
        filename = _defining_file(inspect.unwrap(obj) if callable(obj) else obj)
        if not filename or not os.path.isfile(filename):
            return getattr(obj, "__module__", None) not in ("__main__", "__mp_main__")
        path = _realpath(filename)
        return _installed_path(path) or any(_under(path, d) for d in _library_dirs())

    def owns_file(self, filename: str | None, module: str | None) -> bool:
        known = _file_in_project(filename or "", self.root, self.excluded)
        if known is None:  # no file: code typed into a REPL or notebook
            return self.interactive and module in ("__main__", "__mp_main__")
        return known

    def owns(self, obj: Any) -> bool:
        if isinstance(obj, types.ModuleType):
            file = getattr(obj, "__file__", None)
            if file:
                return self.owns_file(file, None)
            return any(self.owns_file(p, None) for p in getattr(obj, "__path__", []))  # namespace
        return self.owns_file(_defining_file(obj), getattr(obj, "__module__", None))


@functools.lru_cache(maxsize=4096)
def _file_in_project(filename: str, root: str, excluded: tuple[str, ...]) -> bool | None:
    """Whether a file (or a namespace package's folder) is project code; None: no such file."""
    if not filename or not os.path.exists(filename):
        return None
    path = _realpath(filename)
    if not _under(path, root) or _installed_path(path):
        return False
    return not any(_under(path, d) for d in excluded)


def _installed_path(path: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)
