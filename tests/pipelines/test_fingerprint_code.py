"""The code fingerprint misses no change that matters (ZenML #1011), notices none that does not."""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint import code_fingerprint

PROJECT: dict[str, str] = {
    "pyproject.toml": "[project]\nname = 'proj'\n",
    "steps.py": '''
        import json

        import numpy as np

        import helpers
        from helpers import scale
        from lib.models import Model


        def train(rows):
            """Fit a model."""
            data = helpers.clean(rows)
            model = Model(scale(data))
            return json.dumps(model.fit()), np.mean(data)


        def evaluate(rows):
            from helpers import clean as tidy
            import lib.maths

            return lib.maths.double(len(tidy(rows)))
    ''',
    "helpers.py": """
        from lib import maths

        LIMIT = 10


        def clean(rows):
            return [r for r in rows if r is not None][:LIMIT]


        def scale(rows):
            return [maths.double(r) for r in rows]


        def unrelated():
            return 1
    """,
    "lib/__init__.py": "",
    "lib/maths.py": """
        def double(x):
            return 2 * x
    """,
    "lib/models.py": """
        class Model:
            def __init__(self, data):
                self.data = data

            def fit(self):
                return sum(self.data)
    """,
}


def edited(path: str, old: str, new: str, files: dict[str, str] = PROJECT) -> dict[str, str]:
    text = textwrap.dedent(files[path])
    assert old in text, f"{old!r} not in {path}"
    return {**files, path: text.replace(old, new, 1)}


@pytest.fixture
def fingerprint_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[str, list[str]]]:
    """Write a project into a fresh folder, import it and fingerprint one of its functions.

    A fresh folder per version means no stale bytecode or import cache can hide an edit; the
    project's modules leave sys.modules afterwards.
    """
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    versions = itertools.count()

    def run(files: dict[str, str], target: str = "steps:train") -> tuple[str, list[str]]:
        folder = tmp_path / f"v{next(versions)}"
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(textwrap.dedent(text))
        module_name, attr = target.split(":")
        tops = {Path(rel).parts[0].removesuffix(".py") for rel in files}
        shadowed = {n: sys.modules.pop(n) for n in list(sys.modules) if n.split(".")[0] in tops}
        before = set(sys.modules)
        sys.path.insert(0, str(folder))
        importlib.invalidate_caches()
        try:
            return code_fingerprint(getattr(importlib.import_module(module_name), attr))
        finally:
            sys.path.remove(str(folder))
            for name in set(sys.modules) - before:
                del sys.modules[name]
            sys.modules.update(shadowed)

    return run


CHANGED = {
    "step body": ("steps.py", "helpers.clean(rows)", "helpers.clean(rows[1:])"),
    "helper via module attribute": ("helpers.py", "r is not None", "r"),
    "helper via from-import": ("helpers.py", "maths.double(r) for", "maths.double(r) + 1 for"),
    "transitive helper in a package": ("lib/maths.py", "2 * x", "3 * x"),
    "class method": ("lib/models.py", "sum(self.data)", "max(self.data)"),
    "module constant": ("helpers.py", "LIMIT = 10", "LIMIT = 11"),
    "docstring": ("steps.py", "Fit a model.", "Fit the model."),
}
UNCHANGED = {
    "unrelated helper": ("helpers.py", "return 1", "return 2"),
    "comment and blank lines": ("steps.py", "    data =", "    # clean first\n\n    data ="),
    "comment in a helper": ("lib/maths.py", "2 * x", "2 * x  # twice"),
    "formatting": (
        "helpers.py",
        "[maths.double(r) for r in rows]",
        "[\n  maths.double(r)\n for r in rows]",
    ),
    "unrelated module-level code": ("helpers.py", "LIMIT = 10", "LIMIT = 10\nOTHER = [1, 2]"),
}


@pytest.mark.parametrize("edit", CHANGED.values(), ids=CHANGED.keys())
def test_an_edit_to_the_code_a_step_runs_changes_its_fingerprint(
    fingerprint_project: Callable[..., tuple[str, list[str]]], edit: tuple[str, str, str]
) -> None:
    assert fingerprint_project(edited(*edit))[0] != fingerprint_project(PROJECT)[0]


@pytest.mark.parametrize("edit", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_an_edit_that_cannot_change_what_runs_keeps_the_fingerprint(
    fingerprint_project: Callable[..., tuple[str, list[str]]], edit: tuple[str, str, str]
) -> None:
    assert fingerprint_project(edited(*edit))[0] == fingerprint_project(PROJECT)[0]


def test_the_names_say_what_was_followed_and_installed_packages_are_not(
    fingerprint_project: Callable[..., tuple[str, list[str]]],
) -> None:
    _, names = fingerprint_project(PROJECT)
    assert names == [
        "helpers.LIMIT",
        "helpers.clean",
        "helpers.scale",
        "lib.maths.double",
        "lib.models.Model",
        "steps.train",
    ]
    assert not any(n.startswith(("json", "numpy", "builtins")) for n in names)


def test_imports_inside_the_function_are_followed(
    fingerprint_project: Callable[..., tuple[str, list[str]]],
) -> None:
    digest, names = fingerprint_project(PROJECT, "steps:evaluate")
    assert {"helpers.clean", "lib.maths.double", "steps.evaluate"} <= set(names)
    for edit in (CHANGED["transitive helper in a package"], CHANGED["module constant"]):
        assert fingerprint_project(edited(*edit), "steps:evaluate")[0] != digest
    unrelated = edited(*UNCHANGED["unrelated helper"])
    assert fingerprint_project(unrelated, "steps:evaluate")[0] == digest


def test_recursion_closures_and_decorators_are_followed_once(
    fingerprint_project: Callable[..., tuple[str, list[str]]],
) -> None:
    files = {
        "pyproject.toml": "",
        "helpers.py": """
            import functools

            def ping(n):
                return pong(n - 1) if n else 0

            def pong(n):
                return ping(n)

            def retry(times):
                def decorate(fn):
                    @functools.wraps(fn)
                    def wrapper(*args):
                        return fn(*args)
                    return wrapper
                return decorate
        """,
        "steps.py": """
            import helpers

            def make(factor):
                @helpers.retry(times=2)
                def step(x):
                    return helpers.ping(x) * factor
                return step

            train = make(3)
        """,
    }
    digest, names = fingerprint_project(files)
    assert names == [
        "helpers.ping",
        "helpers.pong",
        "helpers.retry.<locals>.decorate.<locals>.wrapper",
        "steps.make.<locals>.step",
    ]
    for edit in [
        ("steps.py", "make(3)", "make(4)"),  # a closure value
        ("steps.py", "retry(times=2)", "retry(times=3)"),  # a decorator's arguments
        ("helpers.py", "return ping(n)", "return ping(n) + 1"),  # through the cycle
        ("helpers.py", "return fn(*args)", "return fn(*args[:1])"),  # the decorator's wrapper
    ]:
        assert fingerprint_project(edited(*edit, files=files))[0] != digest


def test_a_module_level_instance_brings_its_class_and_bases(
    fingerprint_project: Callable[..., tuple[str, list[str]]],
) -> None:
    files = {
        "pyproject.toml": "",
        "models.py": """
            class Base:
                def fit(self):
                    return 1

            class Model(Base):
                pass

            MODEL = Model()
        """,
        "steps.py": """
            from models import MODEL

            def train():
                return MODEL.fit()
        """,
    }
    digest, names = fingerprint_project(files)
    assert names == ["models.Base", "models.Model", "steps.train"]
    assert fingerprint_project(edited("models.py", "return 1", "return 2", files))[0] != digest


def test_code_without_source_hashes_its_bytecode() -> None:
    def compiled(body: str) -> Any:
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(compile(f"def step(x):\n    return {body}\n", "<stdin>", "exec"), namespace)
        return namespace["step"]

    digest, names = code_fingerprint(compiled("x + 1"))
    assert names == ["__main__.step"]
    assert code_fingerprint(compiled("x + 1"))[0] == digest
    assert code_fingerprint(compiled("x + 2"))[0] != digest
    assert code_fingerprint(lambda x: x + 1)[0] != code_fingerprint(lambda x: x + 2)[0]


def test_code_fingerprints_are_stable_across_processes(tmp_path: Path) -> None:
    for rel, text in PROJECT.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from shipyard.pipelines.fingerprint import code_fingerprint, value_fingerprint\n"
        "import steps\n"
        "value = {'b': {1, 'x', 2.5}, 'a': (None, b'y')}\n"
        "print(json.dumps([code_fingerprint(steps.train)[0], value_fingerprint(value)]))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-B", "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_a_non_callable_has_no_code() -> None:
    with pytest.raises(InvalidInput, match="not a function or class"):
        code_fingerprint(42)  # type: ignore[arg-type]
