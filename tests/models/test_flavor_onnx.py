"""The onnx flavor: .onnx files run by onnxruntime; inputs checked before and by the runtime."""

from __future__ import annotations

import sys

import pytest

from shipyard.errors import InvalidInput, MissingDependency
from shipyard.models import load_model, save_model

np = pytest.importorskip("numpy")
onnx = pytest.importorskip(
    "onnx", reason="the onnx flavor needs onnx and onnxruntime (pip install 'shipyard[onnx]')"
)
pytest.importorskip(
    "onnxruntime", reason="the onnx flavor needs onnxruntime (pip install 'shipyard[onnx]')"
)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

FLOAT = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, weights=()):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(weights))
    # IR and opset old enough for any onnxruntime the onnx extra allows
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def linear_model():  # type: ignore[no-untyped-def]
    """y = x @ W + b, for x of shape (any, 3)."""
    W = np.arange(6, dtype="float32").reshape(3, 2)
    b = np.array([0.5, -1.0], dtype="float32")
    return make_model(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"])],
        [helper.make_tensor_value_info("x", FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", FLOAT, ["N", 2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")],
    )


@pytest.fixture
def X():  # type: ignore[no-untyped-def]
    return np.random.default_rng(0).normal(size=(5, 3)).astype("float32")


def test_round_trip(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = linear_model()
    info = save_model(model, tmp_path / "m", input_example=X)
    assert info.flavor == "onnx"
    assert (info.config["inputs"], info.config["outputs"]) == (["x"], ["y"])
    loaded = load_model(tmp_path / "m")  # no trust: an ONNX file holds no code
    (want,) = ReferenceEvaluator(model).run(None, {"x": X})
    np.testing.assert_allclose(loaded.predict(X), want, rtol=1e-6)


def test_signature_is_enforced_and_the_runtime_refusals_are_invalid_input(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    save_model(linear_model(), tmp_path / "signed", input_example=X)
    signed = load_model(tmp_path / "signed")
    with pytest.raises(InvalidInput, match="is float64, the model takes float32"):
        signed.predict(X.astype("float64"))
    with pytest.raises(InvalidInput, match="size 4 in dimension 1"):
        signed.predict(np.ones((2, 4), dtype="float32"))
    # without a signature, onnxruntime checks the input itself
    save_model(linear_model(), tmp_path / "unsigned")
    unsigned = load_model(tmp_path / "unsigned")
    with pytest.raises(InvalidInput, match=r"refused its input.*tensor\(double\)"):
        unsigned.predict(X.astype("float64"))


def test_several_inputs_take_a_dataframe_column_each(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    model = make_model(
        [helper.make_node("Sub", ["a", "b"], ["diff"])],
        [helper.make_tensor_value_info(n, FLOAT, ["N", 1]) for n in ("a", "b")],
        [helper.make_tensor_value_info("diff", FLOAT, ["N", 1])],
    )
    frame = pd.DataFrame({"b": [1.0, 2.0], "a": [5.0, 7.0]}).astype("float32")
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(frame), [[4.0], [5.0]])
    with pytest.raises(InvalidInput, match=r"takes 2 inputs \(a, b\); pass a DataFrame"):
        loaded.predict(frame.to_numpy())
    with pytest.raises(InvalidInput, match=r"missing column\(s\) b"):
        loaded.predict(frame[["a"]])


def test_an_invalid_graph_is_refused_when_saved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = make_model(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", FLOAT, ["N", 3])],
    )
    with pytest.raises(InvalidInput, match=r"not a valid ONNX model.*NoSuchOp"):
        save_model(model, tmp_path / "m")


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    save_model(linear_model(), tmp_path / "m")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(MissingDependency, match=r"pip install 'shipyard\[onnx\]'"):
        load_model(tmp_path / "m")


def test_an_example_the_graph_cannot_take_is_refused_at_save(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = linear_model()
    example = np.ones((2, 3), dtype=np.float64)  # the graph takes float32
    with pytest.raises(InvalidInput, match="cannot predict on its own input example"):
        save_model(model, tmp_path / "m", input_example=example)
    assert not (tmp_path / "m").exists()
