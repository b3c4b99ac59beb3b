"""What every flavor is, and the base class for models Shipyard has no flavor for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


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
        """The model, or a wrapper around it, with a ``predict(data)`` method."""
        raise NotImplementedError
