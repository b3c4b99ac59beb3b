"""Any other model, as a ``PythonModel`` subclass saved with cloudpickle (trust required)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models.flavors.base import Flavor, PythonModel


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
