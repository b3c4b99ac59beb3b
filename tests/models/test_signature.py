"""Signatures inferred from examples, round-tripped through JSON and enforced on input."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InvalidInput
from shipyard.models import ColumnSpec, Signature, TensorSpec, infer_signature

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


@pytest.fixture
def iris_like() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sepal_length": [5.1, 4.9],
            "petals": np.array([3, 4], dtype="int32"),
            "species": ["setosa", "virginica"],
            "ok": [True, False],
        }
    )


def test_infer_columns(iris_like) -> None:  # type: ignore[no-untyped-def]
    sig = infer_signature(iris_like)
    assert sig.inputs == (
        ColumnSpec("sepal_length", "float64"),
        ColumnSpec("petals", "int32"),
        ColumnSpec("species", "string"),
        ColumnSpec("ok", "bool"),
    )
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


def test_infer_tensor() -> None:
    sig = infer_signature(np.zeros((5, 3, 2), dtype="float32"))
    assert sig.inputs == TensorSpec("float32", (None, 3, 2))
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


def test_records_and_column_dicts_are_read_as_frames() -> None:
    records = infer_signature([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert records.inputs == (ColumnSpec("a", "int64"), ColumnSpec("b", "string"))
    assert infer_signature({"a": [1.0]}).inputs == (ColumnSpec("a", "float64"),)


def test_enforce_reorders_drops_extras_and_casts_safely(iris_like) -> None:  # type: ignore[no-untyped-def]
    sig = infer_signature(iris_like)
    sent = pd.DataFrame(
        {
            "id": [7],  # not in the signature: left out
            "ok": [True],
            "species": ["setosa"],
            "petals": np.array([3], dtype="int8"),  # int8 -> int32 is safe
            "sepal_length": [5],  # int -> float64 is safe
        }
    )
    out = sig.enforce(sent)
    assert list(out.columns) == ["sepal_length", "petals", "species", "ok"]
    assert out["sepal_length"].dtype == "float64" and out["petals"].dtype == "int32"


def test_enforce_names_missing_columns(iris_like) -> None:  # type: ignore[no-untyped-def]
    sig = infer_signature(iris_like)
    with pytest.raises(InvalidInput, match="missing columns species, ok"):
        sig.enforce(iris_like[["sepal_length", "petals"]])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("petals", [3.5, 4.0], "'petals' is float64, the model takes int32"),
        ("sepal_length", ["a", "b"], "'sepal_length' is string, the model takes float64"),
        ("species", [1, 2], "'species' is int64, the model takes string"),
    ],
)
def test_enforce_names_wrong_types(iris_like, column, value, message) -> None:  # type: ignore[no-untyped-def]
    sig = infer_signature(iris_like)
    bad = iris_like.copy()
    bad[column] = value
    with pytest.raises(InvalidInput, match=message):
        sig.enforce(bad)


def test_enforce_tensor_shape_and_dtype() -> None:
    sig = Signature(TensorSpec("float64", (None, 4)))
    out = sig.enforce(np.ones((2, 4), dtype="float32"))
    assert out.dtype == "float64" and out.shape == (2, 4)
    assert sig.enforce([[1, 2, 3, 4]]).dtype == "float64"  # lists of ints are fine too
    with pytest.raises(InvalidInput, match="size 3 in dimension 1, the model takes 4"):
        sig.enforce(np.ones((2, 3)))
    with pytest.raises(InvalidInput, match="3 dimensions, the model takes 2"):
        sig.enforce(np.ones((2, 4, 1)))
    with pytest.raises(InvalidInput, match="complex128, the model takes float64"):
        sig.enforce(np.ones((1, 4), dtype="complex128"))


def test_a_matrix_can_feed_a_column_signature() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    out = sig.enforce(np.array([[1.0, 2.0]]))
    assert list(out.columns) == ["a", "b"]


@pytest.mark.parametrize("bad", ["text", 42, {"tensor": {}}, {"columns": [{"dtype": "x"}]}])
def test_bad_inputs_and_bad_signature_json(bad) -> None:  # type: ignore[no-untyped-def]
    sig = Signature((ColumnSpec("a", "float64"),))
    with pytest.raises(InvalidInput):
        if isinstance(bad, dict):
            Signature.from_dict(bad)
        else:
            sig.enforce(bad)


@pytest.fixture
def nullable() -> pd.DataFrame:
    """What ``convert_dtypes()`` (or a Parquet file read as nullable) gives."""
    return pd.DataFrame(
        {
            "f": [1.5, None, 2.0],
            "n": [1, None, 3],
            "i": [1, 2, 3],
            "ok": [True, False, True],
            "s": ["a", None, "c"],
        }
    ).convert_dtypes()


def test_infer_nullable_columns_as_their_numpy_dtype(nullable: pd.DataFrame) -> None:
    assert [str(t) for t in nullable.dtypes] == ["Float64", "Int64", "Int64", "boolean", "string"]
    want = [("f", "float64"), ("n", "int64"), ("i", "int64"), ("ok", "bool"), ("s", "string")]
    assert [(c.name, c.dtype) for c in infer_signature(nullable).inputs] == want
    pytest.importorskip("pyarrow")
    arrow = nullable.astype(
        {"f": "double[pyarrow]", "n": "int64[pyarrow]", "i": "int64[pyarrow]",
         "ok": "bool[pyarrow]", "s": "string[pyarrow]"}
    )  # fmt: skip
    assert [(c.name, c.dtype) for c in infer_signature(arrow).inputs] == want


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_enforce_turns_nullable_columns_into_numpy_ones(
    nullable: pd.DataFrame, backend: str
) -> None:
    if backend == "pyarrow":
        pytest.importorskip("pyarrow")
        nullable = nullable.convert_dtypes(dtype_backend="pyarrow")
    sig = Signature(
        (
            ColumnSpec("f", "float64"),
            ColumnSpec("n", "float64"),  # Int64 with a missing value: a float can hold NaN
            ColumnSpec("i", "int64"),
            ColumnSpec("ok", "bool"),
            ColumnSpec("s", "string"),
        )
    )
    out = sig.enforce(nullable)
    assert [str(t) for t in out.dtypes] == ["float64", "float64", "int64", "bool", "object"]
    assert np.isnan(out["f"][1]) and np.isnan(out["n"][1])
    missing_text = out["s"][1]  # NaN, as text read from a CSV has, not pd.NA
    assert out["s"][0] == "a" and isinstance(missing_text, float) and np.isnan(missing_text)


def test_a_missing_value_an_int_column_cannot_hold_is_refused(nullable: pd.DataFrame) -> None:
    sig = Signature((ColumnSpec("n", "int64"), ColumnSpec("i", "int64")))
    with pytest.raises(InvalidInput) as caught:
        sig.enforce(nullable)
    assert caught.value.message == (
        "model input has missing values: 'n' has missing values in 1 row; "
        "the model takes int64, which cannot hold them"
    )
    assert sig.enforce(nullable.dropna())["n"].dtype == "int64"


def test_categorical_columns_are_named_as_such() -> None:
    sig = Signature((ColumnSpec("colour", "float64"),))
    with pytest.raises(InvalidInput, match="'colour' is category, the model takes float64"):
        sig.enforce(pd.DataFrame({"colour": pd.Categorical([1.0, 2.0])}))


def test_duplicate_columns_are_refused_by_name() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    frame = pd.DataFrame([[1.0, 2.0, 3.0, 4.0]], columns=["a", "b", "a", "c"])
    with pytest.raises(InvalidInput, match=r"model input has duplicate columns: a$"):
        sig.enforce(frame)


@pytest.mark.parametrize(
    ("array", "got"), [(np.ones((2, 3)), "got 3"), (np.ones(2), r"got an array of shape \(2,\)")]
)
def test_a_matrix_of_the_wrong_width_says_how_many_columns(array: np.ndarray, got: str) -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64")))
    with pytest.raises(InvalidInput, match=rf"expected 2 columns \(a, b\), {got}"):
        sig.enforce(array)
