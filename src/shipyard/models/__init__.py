"""Models: flavors (how a model is written and read), signatures, save and load.

Registering versions, logging models from runs and ``models:/`` URIs come with the registry.
"""

from __future__ import annotations

from shipyard.models.files import LoadedModel, ModelInfo, load_model, save_model
from shipyard.models.flavors import PythonModel
from shipyard.models.signature import ColumnSpec, Signature, TensorSpec, infer_signature

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "ModelInfo",
    "PythonModel",
    "Signature",
    "TensorSpec",
    "infer_signature",
    "load_model",
    "save_model",
]
