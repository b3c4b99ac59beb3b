"""PyTorch models: weights plus the class that rebuilds them, or a compiled program.

What is written depends on what is saved:

- an ``nn.Module`` whose class can be imported by name and built with no arguments: its
  ``state_dict`` (``torch.save``) and the class as ``module:qualname``. Loading imports the
  class, builds it and reads the weights with ``torch.load(weights_only=True)``, which rebuilds
  tensors and containers only. That needs no trust: the file cannot carry code, the class must
  be an ``nn.Module`` subclass, and importing it from an installed module is what any program
  using the model does. Attributes set after construction outside the ``state_dict`` (a
  threshold, a vocabulary) are not saved: register them as buffers or make them defaults.
- a ``torch.export.ExportedProgram`` (``torch.export.export(model.eval(), (example,))``), for
  a class that needs constructor arguments: written with ``torch.export.save``. Loading it
  unpickles, so it needs ``trust=True``.
- a ``torch.jit.ScriptModule``: written with ``torch.jit.save``. PyTorch documents that a
  tampered file can run code in ``torch.jit.load``, so it needs ``trust=True``; TorchScript is
  deprecated in recent PyTorch, which warns on save and load.

Any other module is refused with these options rather than scripted on the caller's behalf:
scripting is deprecated, and exporting needs an input example the flavor does not see.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, MissingDependency, require
from shipyard.models.flavors.base import Flavor

STATE_DICT, EXPORTED, TORCHSCRIPT = "state_dict", "exported_program", "torchscript"
FILES = {STATE_DICT: "state_dict.pt", EXPORTED: "model.pt2", TORCHSCRIPT: "model.pt"}


class TorchFlavor(Flavor):
    name = "torch"

    def handles(self, model: Any) -> bool:
        # a torch model cannot exist unless torch (and torch.export for a program) is loaded
        torch, export = sys.modules.get("torch"), sys.modules.get("torch.export")
        if export is not None and isinstance(model, export.ExportedProgram):
            return True
        return torch is not None and isinstance(model, torch.nn.Module)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        torch: Any = require("torch", "torch")
        config: dict[str, Any] = {"torch_version": str(torch.__version__)}
        if isinstance(model, torch.jit.ScriptModule):
            config["format"] = TORCHSCRIPT
            torch.jit.save(model, folder / FILES[TORCHSCRIPT])
        elif isinstance(model, torch.nn.Module):
            config["format"] = STATE_DICT
            config["class"] = _rebuildable_class(torch, model)
            torch.save(model.state_dict(), folder / FILES[STATE_DICT])
        else:
            config["format"] = EXPORTED
            torch.export.save(model, folder / FILES[EXPORTED])
        config["file"] = FILES[config["format"]]
        return config

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        torch: Any = require("torch", "torch")
        form = config.get("format", STATE_DICT)
        if form not in FILES:
            raise InvalidInput(f"unknown PyTorch model format {form!r} (known: {', '.join(FILES)})")
        path = folder / config.get("file", FILES[form])
        if form == STATE_DICT:
            module = _load_state_dict(torch, path, str(config.get("class", "")))
            return TorchPredictor(module.eval())
        if not trust:
            what = "TorchScript" if form == TORCHSCRIPT else "an exported program (.pt2)"
            raise InvalidInput(
                f"this PyTorch model is {what}, and PyTorch warns that loading such a file "
                "can run code from it; load it with trust=True if you trust its source"
            )
        if form == TORCHSCRIPT:
            return TorchPredictor(torch.jit.load(path, map_location="cpu").eval())
        # an exported graph is fixed at export time: it has no train/eval switch to flip
        return TorchPredictor(torch.export.load(path).module())


class TorchPredictor:
    """A loaded PyTorch model: ``predict`` takes an array or a DataFrame, returns numpy."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def predict(self, data: Any) -> Any:
        torch: Any = require("torch", "torch")
        np: Any = require("numpy", "data")
        array = np.asarray(data.to_numpy() if hasattr(data, "to_numpy") else data)
        if array.dtype.kind not in "biuf":
            raise InvalidInput(f"a PyTorch model takes numbers, got {array.dtype} input")
        # torch.from_numpy warns on read-only arrays, which pandas' to_numpy can return
        tensor = torch.from_numpy(np.require(array, requirements=["C", "W"]))
        with torch.inference_mode():
            return _to_numpy(self.module(tensor))

    def __repr__(self) -> str:
        return f"<TorchPredictor {type(self.module).__name__}>"


def _to_numpy(output: Any) -> Any:
    if isinstance(output, (tuple, list)):
        return [_to_numpy(o) for o in output]
    return output.cpu().numpy() if hasattr(output, "cpu") else output


def _rebuildable_class(torch: Any, model: Any) -> str:
    """``module:qualname`` of the model's class, checked to rebuild weights of the same shapes."""
    cls = type(model)
    name = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise _cannot_rebuild(name, "it is defined in __main__ or in a function body")
    try:
        found = _import_class(name) is cls
    except MissingDependency:
        found = False
    if not found:
        raise _cannot_rebuild(name, "it cannot be imported by that name")
    try:
        fresh = _build(torch, cls)
    except Exception as exc:  # whatever the user's constructor raises
        raise _cannot_rebuild(name, f"{cls.__qualname__}() fails ({exc})") from exc
    want, got = _shapes(model.state_dict()), _shapes(fresh.state_dict())
    differ = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    if differ:
        key = differ[0]
        raise _cannot_rebuild(
            name,
            f"{cls.__qualname__}() builds other weights ({key}: {got.get(key)} instead of "
            f"{want.get(key)}), so this model was built with other arguments",
        )
    return name


def _build(torch: Any, cls: type) -> Any:
    try:
        with torch.device("meta"):  # weights that are only compared need no memory
            return cls()
    except Exception:  # some constructors compute on their tensors (.item()), which meta cannot
        return cls()


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def _cannot_rebuild(name: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f"cannot save {name} as its weights and class: {reason}. Either make the class "
        "importable and buildable with no arguments (give its constructor arguments defaults "
        "that build this model), or save a compiled form: "
        "torch.export.export(model.eval(), (example_input,)), or torch.jit.script(model) "
        "(deprecated); loading either needs trust=True"
    )


def _import_class(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MissingDependency(
            f"the model's class {name} cannot be imported here ({exc}); install the package "
            "that defines it"
        ) from None
    return obj


def _load_state_dict(torch: Any, path: Path, class_name: str) -> Any:
    cls = _import_class(class_name)
    # the manifest names the class, so only a module class may be built from it
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise InvalidInput(f"{class_name} is not a torch.nn.Module subclass")
    state = torch.load(path, map_location="cpu", weights_only=True)
    module = cls()
    # assign keeps the saved tensors (and their dtypes, e.g. a half-precision model)
    module.load_state_dict(state, strict=True, assign=True)
    return module
