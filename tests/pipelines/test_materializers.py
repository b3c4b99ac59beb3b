"""Step outputs round-trip through a folder by type; registered materializers come first."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from shipyard.errors import InvalidInput
from shipyard.pipelines import materializers
from shipyard.pipelines.materializers import (
    Materializer,
    PickleWarning,
    check_picklable,
    load_output,
    materializer_for,
    register_materializer,
    save_output,
)


@pytest.fixture(autouse=True)
def _empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materializers, "_REGISTERED", {})


def roundtrip(value: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    meta = save_output(value, folder)
    # The caller stores meta as JSON: load from what it reads back.
    meta = json.loads(json.dumps(meta, allow_nan=False))
    return load_output(folder, meta), meta


class Custom:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return type(other) is Custom and other.x == self.x


def test_import_does_not_load_pandas_or_numpy() -> None:
    code = (
        "import sys, shipyard.pipelines.materializers; "
        "assert 'pandas' not in sys.modules and 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**80),
        1.5,
        -0.0,
        float("nan"),
        float("inf"),
        float("-inf"),
        "héllo \ud800",
        [],
        {},
        (),
        [1, "a", None, [2.5, float("nan")]],
        {"a": {"b": [1, (2, (3, "x"))]}, "n": float("-inf")},
        (1, [2, (3,)], {"k": ()}),
        {1: "int key", (2, 3): "tuple key", None: [True]},
        {"__shipyard__": "tuple", "items": [1]},
    ],
    ids=repr,
)
def test_json_values_round_trip_with_their_types(value: Any, tmp_path: Path) -> None:
    back, meta = roundtrip(value, tmp_path)
    assert meta["materializer"] == "json"
    assert repr(back) == repr(value)  # repr tells tuple from list, True from 1, nan from 0


def test_json_file_is_standard_json(tmp_path: Path) -> None:
    save_output({"x": float("nan"), "t": (1,)}, tmp_path)
    json.loads((tmp_path / "value.json").read_text(), parse_constant=pytest.fail)


def test_dataframe_with_mixed_dtypes_and_index_round_trips(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": np.array([1.5, np.nan, 3.0], dtype="float32"),
            "s": ["a", "b", None],
            "cat": pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"], ordered=True),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
            "tz": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index([10, 20, 30], name="key"),
    )
    back, meta = roundtrip(frame, tmp_path)
    assert meta == {"materializer": "dataframe", "type": "pandas.DataFrame"}
    assert (tmp_path / "data.parquet").exists()
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(3),
        pd.Index(["a", "b", "c"]),
        pd.MultiIndex.from_tuples([(1, "x"), (1, "y"), (2, "x")], names=["p", "q"]),
    ],
    ids=["range", "str", "multi"],
)
def test_dataframe_index_round_trips(index: pd.Index, tmp_path: Path) -> None:
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=index)
    back, _ = roundtrip(frame, tmp_path)
    pd.testing.assert_frame_equal(back, frame)


def test_dataframe_parquet_cannot_hold_falls_back_to_pickle(tmp_path: Path) -> None:
    frame = pd.DataFrame({"mixed": [1, "a"]})
    with pytest.warns(PickleWarning, match=r"pandas\.DataFrame.*could not be stored as dataframe"):
        back, meta = roundtrip(frame, tmp_path)
    assert meta["materializer"] == "pickle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["value.pkl"]  # no half-written parquet
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("name", [None, "price", 3, ("a", "b")], ids=repr)
def test_series_round_trips_with_its_name(name: Any, tmp_path: Path) -> None:
    series = pd.Series(
        pd.Categorical(["a", "b", "a"]), index=pd.Index(["p", "q", "r"], name="ix"), name=name
    )
    back, meta = roundtrip(series, tmp_path)
    assert meta["materializer"] == "series"
    pd.testing.assert_series_equal(back, series)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
        np.array(["a", "bc"]),
        np.zeros((0, 3)),
    ],
    ids=["float32-2d", "fortran", "datetime", "unicode", "empty"],
)
def test_ndarray_round_trips(array: np.ndarray, tmp_path: Path) -> None:
    back, meta = roundtrip(array, tmp_path)
    assert meta["materializer"] == "numpy"
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("scalar", [np.float64(0.25), np.int64(7), np.bool_(True)], ids=repr)
def test_numpy_scalar_keeps_its_type(scalar: np.generic, tmp_path: Path) -> None:
    back, meta = roundtrip(scalar, tmp_path)
    assert meta["materializer"] == "numpy"  # not json, though np.float64 is a float
    assert type(back) is type(scalar) and back == scalar


def test_object_ndarray_is_pickled_with_a_warning(tmp_path: Path) -> None:
    array = np.array([{"a": 1}, None], dtype=object)
    with pytest.warns(PickleWarning, match=r"numpy\.ndarray"):
        back, meta = roundtrip(array, tmp_path)
    assert meta["materializer"] == "pickle"
    assert back.dtype == object and list(back) == list(array)


def _iris_like() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


class Doubler(TransformerMixin, BaseEstimator):
    """A project-local transformer: its type is outside sklearn, numpy and scipy."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return x * 2


def test_sklearn_pipeline_round_trips_with_equal_predictions(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _iris_like()
    model = make_pipeline(Doubler(), StandardScaler(), LogisticRegression()).fit(x, y)
    back, meta = roundtrip(model, tmp_path)
    assert meta["materializer"] == "sklearn"
    assert any(t.endswith(".Doubler") for t in meta["types"])  # it loads: trust is assumed
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_sklearn_holding_a_lambda_falls_back_to_pickle(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = _iris_like()
    model = make_pipeline(FunctionTransformer(lambda a: a * 2), LogisticRegression()).fit(x, y)
    with pytest.warns(PickleWarning, match="could not be stored as sklearn.*lambda"):
        back, meta = roundtrip(model, tmp_path)
    assert meta["materializer"] == "pickle"
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize("value", [b"\x00\xffraw", bytearray(b"abc"), b""], ids=repr)
def test_bytes_round_trip_as_a_raw_file(value: bytes, tmp_path: Path) -> None:
    back, meta = roundtrip(value, tmp_path)
    assert meta["materializer"] == "bytes"
    assert (tmp_path / "value.bin").read_bytes() == bytes(value)
    assert type(back) is type(value) and back == value


@pytest.mark.parametrize(
    "value", [Custom(3), collections.OrderedDict(a=1)], ids=["custom", "dict-subclass"]
)
def test_other_values_are_pickled_with_a_warning_naming_type_and_remedy(
    value: Any, tmp_path: Path
) -> None:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    with pytest.warns(PickleWarning, match="register_materializer") as record:
        back, meta = roundtrip(value, tmp_path)
    assert name in str(record[0].message)
    assert meta["materializer"] == "pickle" and meta["type"] == name
    assert type(back) is type(value) and back == value


def test_unpicklable_value_cannot_be_stored(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"_thread\.lock cannot be stored"):
        save_output(threading.Lock(), tmp_path)


class Base:
    pass


class Child(Base):
    pass


class GrandChild(Child):
    pass


class Tagged(Materializer):
    """Writes only a tag, so tests see which materializer ran."""

    def __init__(self, name: str) -> None:
        self.name = name

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        return {"tag": self.name}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        return meta["tag"]


def test_registered_materializers_win_most_specific_type_first(tmp_path: Path) -> None:
    register_materializer(Base, Tagged("base"))
    register_materializer(Child, Tagged("child"))
    register_materializer(dict, Tagged("dicts"))
    assert materializer_for(Base()).name == "base"
    assert materializer_for(Child()).name == "child"
    assert materializer_for(GrandChild()).name == "child"
    assert materializer_for({"a": 1}).name == "dicts"  # over the built-in json
    assert materializer_for([1]).name == "json"
    assert roundtrip(GrandChild(), tmp_path / "g") == (
        "child",
        {"tag": "child", "materializer": "child", "type": f"{__name__}.GrandChild"},
    )


def test_registered_materializer_that_declines_falls_through(tmp_path: Path) -> None:
    class OnlyEven(Tagged):
        def handles(self, value: Any) -> bool:
            return value % 2 == 0

    register_materializer(int, OnlyEven("even"))
    assert materializer_for(4).name == "even"
    assert materializer_for(3).name == "json"


def test_register_as_class_decorator(tmp_path: Path) -> None:
    @register_materializer
    class CustomMaterializer(Materializer):
        name = "custom"
        types = (Custom,)

        def save(self, value: Custom, folder: Path) -> dict[str, Any]:
            (folder / "x.txt").write_text(str(value.x))
            return {}

        def load(self, folder: Path, meta: dict[str, Any]) -> Custom:
            return Custom(int((folder / "x.txt").read_text()))

    assert isinstance(CustomMaterializer, type)  # the decorator returns the class
    back, meta = roundtrip(Custom(5), tmp_path)  # no PickleWarning: warnings are errors
    assert meta["materializer"] == "custom" and back.x == 5


def test_register_rejects_a_taken_name_and_a_missing_materializer() -> None:
    with pytest.raises(InvalidInput, match="'json' is taken"):
        register_materializer(Custom, Tagged("json"))
    with pytest.raises(InvalidInput, match="needs a materializer"):
        register_materializer(Custom)


def test_bad_meta_from_a_registered_materializer_is_invalid_input(tmp_path: Path) -> None:
    class BadMeta(Tagged):
        def save(self, value: Any, folder: Path) -> dict[str, Any]:
            return {"type": "mine"} if value.x else {"when": object()}

    register_materializer(Custom, BadMeta("bad"))
    with pytest.raises(InvalidInput, match="reserved keys"):
        save_output(Custom(1), tmp_path)
    with pytest.raises(InvalidInput, match="not JSON"):
        save_output(Custom(0), tmp_path)


def test_unknown_materializer_name_is_invalid_input_naming_known_ones(tmp_path: Path) -> None:
    register_materializer(Custom, Tagged("mine"))
    with pytest.raises(InvalidInput, match=r"'parquet2'.*json.*mine.*pickle"):
        load_output(tmp_path, {"materializer": "parquet2", "type": "x.Y"})


def test_check_picklable_accepts_lambdas_and_closures() -> None:
    offset = 3
    check_picklable(lambda v: v + offset, step="train")
    check_picklable({"model": Custom(1)}, step="train")


@pytest.mark.parametrize(
    ("value", "type_name", "reason"),
    [
        (threading.Lock(), "_thread.lock", "lock"),
        ((i for i in range(3)), "builtins.generator", "generator"),
        ({"inner": threading.Lock()}, "builtins.dict", "lock"),
    ],
    ids=["lock", "generator", "nested-lock"],
)
def test_check_picklable_names_step_type_and_reason(
    value: Any, type_name: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        check_picklable(value, step="evaluate")
    message = str(info.value)
    assert "'evaluate'" in message and type_name in message and reason in message
