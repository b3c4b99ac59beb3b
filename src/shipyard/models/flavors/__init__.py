"""Flavors: how each kind of model is written to a folder and read back.

A flavor is a small class (``base.Flavor``), one module each; ``flavor_for(model)`` picks the
first in ``FLAVORS`` that takes the model, ``flavor_named`` finds the one a manifest names.

- sklearn: scikit-learn estimators, through skops (foreign types need trust=True)
- python: ``PythonModel`` subclasses, through cloudpickle (always trust=True)
- torch: an ``nn.Module`` as its state_dict plus its class (no trust needed); an
  ``ExportedProgram`` or a TorchScript module (trust=True)
- onnx: an ``onnx.ModelProto``, run by onnxruntime (no trust needed)

Heavy libraries are imported only when a model of theirs is saved or loaded: a flavor's
``handles`` looks in ``sys.modules`` (a model of a library that was never imported cannot
exist) and its ``save`` / ``load`` go through ``errors.require``, naming the pip extra.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors.base import Flavor, PythonModel
from shipyard.models.flavors.onnx import OnnxFlavor
from shipyard.models.flavors.python import PythonFlavor
from shipyard.models.flavors.sklearn import SklearnFlavor
from shipyard.models.flavors.torch import TorchFlavor

# Order matters only for a model two flavors could take: a PythonModel subclass that is also
# an nn.Module was written with its own predict, so python comes before torch.
FLAVORS: list[Flavor] = [SklearnFlavor(), PythonFlavor(), TorchFlavor(), OnnxFlavor()]


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


__all__ = ["FLAVORS", "Flavor", "PythonModel", "flavor_for", "flavor_named"]
