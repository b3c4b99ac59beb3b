"""Helpers shared by the validation tests (a module, since conftest is not importable)."""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.models import LoadedModel, ModelInfo, infer_signature


def loaded(model: Any, example: Any = None) -> LoadedModel:
    """``model`` as validate_models receives it, with the signature of ``example``."""
    signature = infer_signature(example) if example is not None else None
    return LoadedModel(model, ModelInfo(flavor="sklearn", config={}, signature=signature))


class Fixed:
    """A model whose predictions are given: row i of the data gets ``values[i]``."""

    def __init__(self, values: Any) -> None:
        self.values = np.asarray(values)

    def predict(self, X: Any) -> Any:
        return self.values[: len(X)]


class Broken:
    """A model whose predict raises."""

    def predict(self, X: Any) -> Any:
        raise RuntimeError("model file is corrupt")
