"""The cache key misses no change that matters (ZenML #1011) and notices none that does not."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.pipelines import fingerprint as fp
from shipyard.pipelines.fingerprint import (
    cache_key,
    code_fingerprint,
    files_fingerprint,
    register_fingerprint,
    value_fingerprint,
)

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


# --- code ------------------------------------------------------------------------------------

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


# --- files -----------------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "nested").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "data" / "nested" / "b.csv").write_text("x,y\n3,4\n")
    (tmp_path / "data" / "notes.txt").write_text("not data\n")
    return tmp_path


def test_files_are_listed_by_relative_path(data: Path) -> None:
    digest, files = files_fingerprint(["data/**/*.csv"], data)
    assert sorted(files) == ["data/a.csv", "data/nested/b.csv"]
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    assert files_fingerprint(["data/*.csv", "data/nested/*.csv"], data)[0] == digest
    _, whole_folder = files_fingerprint(["data"], data)
    assert sorted(whole_folder) == ["data/a.csv", "data/nested/b.csv", "data/notes.txt"]


def test_changed_content_changes_the_digest_and_a_touch_does_not(data: Path) -> None:
    digest, _ = files_fingerprint(["data/**/*.csv"], data)
    csv = data / "data" / "a.csv"
    os.utime(csv, ns=(1_000_000_000, 1_000_000_000))
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    csv.write_text("x,y\n1,3\n")  # same size
    os.utime(csv, ns=(1_000_000_000, 1_000_000_000))  # and the same mtime as before
    assert files_fingerprint(["data/**/*.csv"], data)[0] != digest


def test_a_new_matching_file_changes_the_digest_and_another_does_not(data: Path) -> None:
    digest, _ = files_fingerprint(["data/**/*.csv"], data)
    (data / "data" / "c.txt").write_text("unrelated\n")
    assert files_fingerprint(["data/**/*.csv"], data)[0] == digest
    (data / "data" / "nested" / "c.csv").write_text("x,y\n")
    assert files_fingerprint(["data/**/*.csv"], data)[0] != digest


@pytest.mark.parametrize(
    ("patterns", "missing"),
    [(["data/*.parquet"], "data/*.parquet"), (["data/*.csv", "missing/**"], "missing/**")],
)
def test_a_pattern_matching_nothing_is_an_error_naming_it(
    data: Path, patterns: list[str], missing: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        files_fingerprint(patterns, data)
    assert f"{missing!r} matches no file" in raised.value.message


@pytest.mark.parametrize("patterns", ["data/*.csv", ["/etc/passwd"], [""]])
def test_malformed_patterns_are_refused(data: Path, patterns: Any) -> None:
    with pytest.raises(InvalidInput):
        files_fingerprint(patterns, data)


def test_unchanged_old_files_are_hashed_once(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_RACY_NS", 0)  # written just now, yet trusted
    monkeypatch.setattr(fp, "_stat_cache", {})
    hashed: list[Path] = []
    real = fp._hash_file
    monkeypatch.setattr(fp, "_hash_file", lambda path: hashed.append(path) or real(path))
    first = files_fingerprint(["data/a.csv"], data)
    assert files_fingerprint(["data/a.csv"], data) == first
    assert len(hashed) == 1


# --- values ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Config:
    lr: float
    layers: list[int]


def frame(**overrides: Any) -> pd.DataFrame:
    columns = {"a": [1, 2, 3], "b": ["x", "y", "z"], **overrides}
    return pd.DataFrame(columns)


SAME = {
    "dict key order": ({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"d": 3, "c": 2}, "a": 1}),
    "list and tuple": ([1, "a"], (1, "a")),
    "set order": ({3, 1, 2}, frozenset({2, 1, 3})),
    "equal frames": (frame(), frame()),
    "equal series": (frame()["a"], frame()["a"].copy()),
    "equal arrays, any layout": (
        np.arange(6).reshape(2, 3),
        np.asfortranarray(np.arange(6).reshape(2, 3)),
    ),
    "dataclasses": (Config(0.1, [1, 2]), Config(0.1, [1, 2])),
    "paths": (Path("data/x.csv"), Path("data") / "x.csv"),
}
DIFFERENT = {
    "int and float": (1, 1.0),
    "bool and int": (True, 1),
    "str and int": ("1", 1),
    "str and bytes": ("x", b"x"),
    "int and str keys": ({1: "a"}, {"1": "a"}),
    "nesting": ([[1, 2], [3]], [[1], [2, 3]]),
    "changed cell": (frame(), frame(a=[1, 2, 4])),
    "changed dtype": (frame(), frame(a=[1.0, 2.0, 3.0])),
    "renamed column": (frame(), frame().rename(columns={"b": "c"})),
    "changed index": (frame(), frame().set_axis([0, 1, 5])),
    "series name": (frame()["a"], frame()["a"].rename("z")),
    "array dtype": (np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int32)),
    "array shape": (np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)),
    "object arrays": (np.array(["a", None], dtype=object), np.array(["b", None], dtype=object)),
    "dataclasses": (Config(0.1, [1, 2]), Config(0.2, [1, 2])),
    "numpy scalars": (np.float64(1.0), np.float32(1.0)),
}


@pytest.mark.parametrize(("left", "right"), SAME.values(), ids=SAME.keys())
def test_equal_values_have_equal_fingerprints(left: Any, right: Any) -> None:
    assert value_fingerprint(left) == value_fingerprint(right)


@pytest.mark.parametrize(("left", "right"), DIFFERENT.values(), ids=DIFFERENT.keys())
def test_different_values_have_different_fingerprints(left: Any, right: Any) -> None:
    assert value_fingerprint(left) != value_fingerprint(right)


def test_functions_as_values_count_by_their_code() -> None:
    assert value_fingerprint(lambda x: x + 1) != value_fingerprint(lambda x: x + 2)
    assert value_fingerprint(json.dumps) == value_fingerprint(json.dumps)


def test_other_objects_are_pickled_and_unpicklable_ones_refused() -> None:
    class Opaque:
        def __init__(self, n: int) -> None:
            self.n = n

    assert value_fingerprint(Opaque(1)) == value_fingerprint(Opaque(1))
    assert value_fingerprint(Opaque(1)) != value_fingerprint(Opaque(2))
    with pytest.raises(InvalidInput, match="register_fingerprint"):
        value_fingerprint(x for x in ())


def test_registered_types_use_their_own_rule() -> None:
    class Model:
        def __init__(self, weights: list[float], seen: int) -> None:
            self.weights, self.seen = weights, seen

    @register_fingerprint(Model)
    def _(model: Model) -> str:
        return json.dumps(model.weights)

    assert value_fingerprint(Model([1.0], seen=1)) == value_fingerprint(Model([1.0], seen=9))
    assert value_fingerprint(Model([1.0], seen=1)) != value_fingerprint(Model([2.0], seen=1))
    assert value_fingerprint({"m": Model([1.0], 1)}) != value_fingerprint({"m": [1.0]})


# --- cache key -------------------------------------------------------------------------------


def test_every_part_of_the_key_counts() -> None:
    parts: dict[str, Any] = {
        "code": "c",
        "params": {"n": "p"},
        "inputs": {"df": "i"},
        "files": "f",
        "environment": "e",
    }
    key = cache_key(**parts)
    assert cache_key(**{**parts, "params": {"n": "p"}}) == key
    for name, other in [
        ("code", "c2"),
        ("params", {"n": "p2"}),
        ("params", {"m": "p"}),
        ("inputs", {"df": "i2"}),
        ("files", None),
        ("environment", None),
    ]:
        assert cache_key(**{**parts, name: other}) != key, name


def test_the_key_takes_fingerprints_not_raw_values() -> None:
    with pytest.raises(InvalidInput, match="params"):
        cache_key(code="c", params={"n": 3}, inputs={}, files=None, environment=None)  # type: ignore[dict-item]
