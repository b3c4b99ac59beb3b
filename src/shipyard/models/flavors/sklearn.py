"""scikit-learn models, through skops: no pickle, so a file can only rebuild allowed types."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models.flavors.base import Flavor

# Types from these packages are what scikit-learn models are made of; anything else found in
# a skops file needs trust=True.
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


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

        # Listing the file's types now saves every load a second pass over the file.
        types = sorted(sio.get_untrusted_types(file=folder / self.FILE))
        return {"file": self.FILE, "sklearn_version": sklearn.__version__, "types": types}

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        sio: Any = require("skops.io", "models")
        path = folder / config.get("file", self.FILE)
        listed = config.get("types")
        if isinstance(listed, list) and all(isinstance(t, str) for t in listed):
            # The manifest cannot widen trust: only safe types are passed unless trust=True,
            # and skops itself refuses any type in the file that is not passed.
            trusted = listed if trust else [t for t in listed if t.startswith(SAFE_PREFIXES)]
            from skops.io.exceptions import UntrustedTypesFoundException

            try:
                return sio.load(path, trusted=trusted)
            except UntrustedTypesFoundException:
                pass  # the file holds other types than listed: say which, below
        found = sio.get_untrusted_types(file=path)
        unsafe = [t for t in found if not t.startswith(SAFE_PREFIXES)]
        if unsafe and not trust:
            raise InvalidInput(
                f"the model file {path.name} holds types outside scikit-learn, numpy and scipy "
                f"({', '.join(unsafe[:5])}); load it with trust=True if you trust its source"
            )
        return sio.load(path, trusted=found)
