"""The torch flavor: weights plus class by default, exported programs and TorchScript with trust."""

from __future__ import annotations

import json
import sys

import pytest

from shipyard.errors import InvalidInput, MissingDependency
from shipyard.models import load_model, save_model

np = pytest.importorskip("numpy")
torch = pytest.importorskip(
    "torch", reason="the torch flavor needs PyTorch (pip install 'shipyard[torch]')"
)
nn = torch.nn

# TorchScript warns on every use in recent PyTorch; its tests check the format still works.
TORCHSCRIPT_DEPRECATED = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)


class TinyNet(nn.Module):
    def __init__(self, n_in: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 3)
        )

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.layers(x)


class NeedsArgs(nn.Module):
    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.linear(x)


@pytest.fixture
def X():  # type: ignore[no-untyped-def]
    return np.random.default_rng(0).normal(size=(6, 4)).astype("float32")


def expected(model, X):  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return model.eval()(torch.from_numpy(X)).numpy()


def test_module_saves_weights_and_class_and_loads_without_trust(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = TinyNet()
    info = save_model(model, tmp_path / "m", input_example=X)
    assert info.flavor == "torch"
    assert info.config["format"] == "state_dict"
    assert info.config["class"].endswith(":TinyNet")
    loaded = load_model(tmp_path / "m")
    assert not loaded.model.module.training  # dropout is off when predicting
    np.testing.assert_array_equal(loaded.predict(X), expected(model, X))


def test_signature_is_enforced(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    save_model(TinyNet(), tmp_path / "m", input_example=X)
    loaded = load_model(tmp_path / "m")
    with pytest.raises(InvalidInput, match="is float64, the model takes float32"):
        loaded.predict(X.astype("float64"))
    with pytest.raises(InvalidInput, match="size 3 in dimension 1"):
        loaded.predict(X[:, :3])
    assert loaded.predict(X.astype("int8")).dtype == np.float32  # a safe cast is made


def test_dataframe_input(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = TinyNet()
    save_model(model, tmp_path / "m", input_example=frame)
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(frame), expected(model, X))


def test_a_class_that_needs_arguments_is_refused_with_the_options(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=r"NeedsArgs\(\) fails .*torch\.export\.export"):
        save_model(NeedsArgs(4), tmp_path / "a")
    with pytest.raises(InvalidInput, match=r"TinyNet\(\) builds other weights"):
        save_model(TinyNet(hidden=16), tmp_path / "b")

    class Local(nn.Module):
        pass

    with pytest.raises(InvalidInput, match="in a function body"):
        save_model(Local(), tmp_path / "c")


def test_exported_program_round_trip_needs_trust(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = NeedsArgs(4).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.from_numpy(X),), dynamic_shapes=({0: batch},))
    info = save_model(program, tmp_path / "m", input_example=X)
    assert info.config["format"] == "exported_program"
    with pytest.raises(InvalidInput, match="trust=True"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", trust=True)
    np.testing.assert_array_equal(loaded.predict(X), expected(model, X))
    np.testing.assert_array_equal(loaded.predict(X[:3]), expected(model, X[:3]))


@TORCHSCRIPT_DEPRECATED
def test_torchscript_round_trip_needs_trust(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = NeedsArgs(4).eval()
    info = save_model(torch.jit.script(model), tmp_path / "m", input_example=X)
    assert info.config["format"] == "torchscript"
    with pytest.raises(InvalidInput, match=r"TorchScript.*trust=True"):
        load_model(tmp_path / "m")
    loaded = load_model(tmp_path / "m", trust=True)
    np.testing.assert_array_equal(loaded.predict(X), expected(model, X))


def test_manifest_can_only_name_a_module_class(tmp_path) -> None:  # type: ignore[no-untyped-def]
    save_model(TinyNet(), tmp_path / "m")
    manifest = tmp_path / "m" / "shipyard-model.json"
    data = json.loads(manifest.read_text())
    for name, error, message in [
        ("os:getcwd", InvalidInput, "not a torch.nn.Module subclass"),
        ("no_such_package.nets:Net", MissingDependency, "install the package that defines it"),
    ]:
        data["config"]["class"] = name
        manifest.write_text(json.dumps(data))
        with pytest.raises(error, match=message):
            load_model(tmp_path / "m")


def test_missing_torch_names_the_extra(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    save_model(TinyNet(), tmp_path / "m")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(MissingDependency, match=r"pip install 'shipyard\[torch\]'"):
        load_model(tmp_path / "m")


def test_an_example_the_weights_cannot_take_is_refused_at_save(X, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="cannot predict on its own input example"):
        save_model(TinyNet(), tmp_path / "m", input_example=X.astype("float64"))
    assert not (tmp_path / "m").exists()
