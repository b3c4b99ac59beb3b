"""Equal values have equal fingerprints, different ones differ, and types can bring their own."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint import register_fingerprint, value_fingerprint


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
