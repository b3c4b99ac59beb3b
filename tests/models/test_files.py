"""Flavors round-trip: save, load, and the predictions are equal; trust rules hold."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.models import PythonModel, load_model, save_model

np = pytest.importorskip("numpy")
pytest.importorskip("skops")
datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def iris():  # type: ignore[no-untyped-def]
    X, y = datasets.load_iris(return_X_y=True, as_frame=True)
    return X, y


def test_sklearn_pipeline_round_trip(iris, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    model = make_pipeline(StandardScaler(), RandomForestClassifier(20, random_state=0)).fit(X, y)
    info = save_model(model, tmp_path / "m", input_example=X.head(5))
    assert info.flavor == "sklearn"
    assert [c.name for c in info.signature.inputs] == list(X.columns)  # type: ignore[union-attr]
    loaded = load_model(tmp_path / "m")
    assert (loaded.predict(X) == model.predict(X)).all()
    # the signature is enforced: a missing column is named, int input is cast safely
    with pytest.raises(InvalidInput, match="missing column petal width"):
        loaded.predict(X.drop(columns=["petal width (cm)"]))
    as_ints = X.round().astype("int64")
    assert (loaded.predict(as_ints) == model.predict(as_ints.astype("float64"))).all()


def test_skops_files_with_foreign_types_need_trust(iris, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.preprocessing import FunctionTransformer

    X, _ = iris
    model = FunctionTransformer(json.dumps).fit(X)  # a function from outside scikit-learn
    save_model(model, tmp_path / "m")
    with pytest.raises(InvalidInput, match="trust=True"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", trust=True).model.func is json.dumps


def test_a_manifest_listing_foreign_types_as_safe_does_not_widen_trust(iris, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.preprocessing import FunctionTransformer

    X, _ = iris
    save_model(FunctionTransformer(json.dumps).fit(X), tmp_path / "m")
    manifest = tmp_path / "m" / "shipyard-model.json"
    data = json.loads(manifest.read_text())
    assert "json.dumps" in data["config"]["types"]  # listed at save time
    data["config"]["types"] = ["sklearn.preprocessing._function_transformer.FunctionTransformer"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=r"json\.dumps.*trust=True"):
        load_model(tmp_path / "m")


class Doubler(PythonModel):
    def load(self, context):  # type: ignore[no-untyped-def]
        self.loaded_from = context["path"]

    def predict(self, inputs):  # type: ignore[no-untyped-def]
        return np.asarray(inputs) * 2


def test_python_model_round_trip_needs_trust(tmp_path) -> None:  # type: ignore[no-untyped-def]
    save_model(Doubler(), tmp_path / "m", input_example=np.ones((2, 3)))
    with pytest.raises(InvalidInput, match="trust=True"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", trust=True)
    assert loaded.model.loaded_from == str(tmp_path / "m")
    assert loaded.predict([[1, 2, 3]]).tolist() == [[2.0, 4.0, 6.0]]
    with pytest.raises(InvalidInput, match="size 2 in dimension 1"):
        loaded.predict([[1, 2]])


def test_unknown_model_type_suggests_python_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="PythonModel"):
        save_model(object(), tmp_path / "m")


def test_folder_must_be_new_and_hold_a_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(AlreadyExists, match="not empty"):
        save_model(Doubler(), tmp_path / "full")
    with pytest.raises(NotFound, match="no model"):
        load_model(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "shipyard-model.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_model(tmp_path / "bad")


def test_the_input_example_comes_back_in_the_signature_dtypes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    from shipyard.models.files import read_example

    frame = pd.DataFrame(
        {
            "f": np.array([0.1, 0.2], dtype="float32"),
            "i": np.array([1, 2], dtype="int32"),
            "t": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "s": ["a", "b"],
        }
    )
    save_model(Doubler(), tmp_path / "m", input_example=frame)
    example = read_example(tmp_path / "m")
    assert example is not None, "the example should pass its own signature"
    assert [str(t) for t in example.dtypes[:2]] == ["float32", "int32"]
    assert example["t"].dtype.kind == "M" and list(example["s"]) == ["a", "b"]
    tensor = np.ones((2, 3), dtype="float32")
    save_model(Doubler(), tmp_path / "t", input_example=tensor)
    assert read_example(tmp_path / "t").dtype == np.float32
