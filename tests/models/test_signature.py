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
