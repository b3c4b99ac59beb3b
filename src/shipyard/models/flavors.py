"""Flavors: how each kind of model is written to a folder and read back.

A flavor is a small class; ``flavor_for(model)`` picks the first that takes the model.
scikit-learn goes through skops (no pickle: a file can only rebuild the types it is allowed
to); anything else is a ``PythonModel`` subclass, saved with cloudpickle, which can run code
when loaded and so is only loaded with ``trust=True``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from shipyard.errors import InvalidInput, require

# Types from these packages are what scikit-learn models are made of; anything else found in
# a skops file needs trust=True.
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class PythonModel:
    """Base class for a model Shipyard has no flavor for: override ``predict``."""

    def load(self, context: dict[str, Any]) -> None:
        """Called once after loading, with the model folder's path under ``"path"``."""

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict(inputs)")


class Flavor:
    name: ClassVar[str]

    def handles(self, model: Any) -> bool:
        raise NotImplementedError

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        """Write the model into ``folder``; return what ``load`` needs to know."""
        raise NotImplementedError

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        raise NotImplementedError


class SklearnFlavor(Flavor):
    name = "sklearn"
    FILE = "model.skops"

    def handles(self, model: Any) -> bool:
        if "sklearn" not in sys.modules:  # not a scikit-learn model if sklearn is not loaded
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        sio: Any = require("skops.io", "models")
        sio.dump(model, folder / self.FILE)
        import sklearn

        return {"file": self.FILE, "sklearn_version": sklearn.__version__}

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        sio: Any = require("skops.io", "models")
        path = folder / config.get("file", self.FILE)
        found = sio.get_untrusted_types(file=path)
        unsafe = [t for t in found if not t.startswith(SAFE_PREFIXES)]
        if unsafe and not trust:
            raise InvalidInput(
                f"the model file {path.name} holds types outside scikit-learn, numpy and scipy "
                f"({', '.join(unsafe[:5])}); load it with trust=True if you trust its source"
            )
        return sio.load(path, trusted=found)


class PythonFlavor(Flavor):
    name = "python"
    FILE = "model.pkl"

    def handles(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        cloudpickle: Any = require("cloudpickle", "models")
        with open(folder / self.FILE, "wb") as f:
            cloudpickle.dump(model, f)
        return {"file": self.FILE, "class": f"{type(model).__module__}.{type(model).__qualname__}"}

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        if not trust:
            raise InvalidInput(
                f"{config.get('class', 'this model')} was saved with cloudpickle, which runs "
                "code when loaded; load it with trust=True if you trust its source"
            )
        cloudpickle: Any = require("cloudpickle", "models")
        with open(folder / config.get("file", self.FILE), "rb") as f:
            model = cloudpickle.load(f)
        model.load({"path": str(folder)})
        return model


FLAVORS: list[Flavor] = [SklearnFlavor(), PythonFlavor()]


def flavor_for(model: Any) -> Flavor:
    for flavor in FLAVORS:
        if flavor.handles(model):
            return flavor
    raise InvalidInput(
        f"Shipyard has no flavor for {type(model).__module__}.{type(model).__qualname__}; "
        "wrap it in a subclass of sy.PythonModel (shipyard.models.PythonModel) with a "
        "predict(inputs) method"
    )


def flavor_named(name: str) -> Flavor:
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    known = ", ".join(f.name for f in FLAVORS)
    raise InvalidInput(f"unknown model flavor {name!r} (this Shipyard knows: {known})")
