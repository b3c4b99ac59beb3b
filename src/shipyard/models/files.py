"""Saving a model to a folder and loading it back, with its flavor and signature."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.models.flavors import flavor_for, flavor_named
from shipyard.models.signature import Signature, infer_signature

MANIFEST = "shipyard-model.json"
EXAMPLE = "input_example.json"  # a few rows of real input: what a gateway warms up with
EXAMPLE_ROWS = 5
FORMAT = 1


@dataclass(frozen=True)
class ModelInfo:
    """What a model folder's manifest says."""

    flavor: str
    config: dict[str, Any]
    signature: Signature | None = None
    python: str = ""
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "flavor": self.flavor,
            "config": self.config,
            "signature": self.signature.to_dict() if self.signature else None,
            "python": self.python,
            "created_at": self.created_at,
        }


def save_model(model: Any, path: str | Path, *, input_example: Any = None) -> ModelInfo:
    """Write ``model`` into the new folder ``path`` with its flavor and signature."""
    folder = Path(path)
    if folder.exists() and any(folder.iterdir()):
        raise AlreadyExists(f"cannot save a model into {str(folder)!r}: the folder is not empty")
    flavor = flavor_for(model)
    signature = infer_signature(input_example) if input_example is not None else None
    folder.mkdir(parents=True, exist_ok=True)
    info = ModelInfo(
        flavor=flavor.name,
        config=flavor.save(model, folder),
        signature=signature,
        python=platform.python_version(),
        created_at=time.time(),
    )
    if signature is not None and flavor.name in CHECKED_AT_SAVE:
        _check_example(folder, info, input_example)
    if signature is not None:
        _write_example(folder / EXAMPLE, signature.enforce(input_example))
    (folder / MANIFEST).write_text(json.dumps(info.to_dict(), indent=2))
    return info


# Flavors whose models take only the exact dtype their graph or weights have: a model saved
# with an example it cannot take would never predict on input matching its own signature.
CHECKED_AT_SAVE = ("torch", "onnx")


def _check_example(folder: Path, info: ModelInfo, example: Any) -> None:
    import shutil

    assert info.signature is not None
    try:
        loaded = flavor_named(info.flavor).load(folder, info.config, True)  # written just now
        loaded.predict(info.signature.enforce(example))
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidInput(
            f"the {info.flavor} model cannot predict on its own input example, so it could "
            f"never take input matching the signature inferred from it ({exc}); pass an "
            "example of the dtype and shape the model takes (e.g. float32 for most PyTorch "
            "and ONNX models: X[:5].astype('float32'))"
        ) from None


class LoadedModel:
    """A model read back from its folder; ``predict`` enforces the signature first."""

    def __init__(self, model: Any, info: ModelInfo) -> None:
        self.model = model
        self.info = info
        self.folder: Path | None = None

    @property
    def input_example(self) -> Any:
        """The example saved with the model, as input it takes; None when there is none."""
        return read_example(self.folder) if self.folder is not None else None

    @property
    def signature(self) -> Signature | None:
        return self.info.signature

    def predict(self, data: Any) -> Any:
        if self.info.signature is not None:
            data = self.info.signature.enforce(data)
        return self.model.predict(data)

    @property
    def classes(self) -> list[Any] | None:
        """The classes a classifier knows (its ``classes_``, the order of ``predict_proba``'s
        columns), or None."""
        classes = getattr(self.model, "classes_", None)
        return None if classes is None else list(classes)

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, one column per class in ``classes``; the signature is enforced."""
        predict_proba = getattr(self.model, "predict_proba", None)
        if not callable(predict_proba):
            raise InvalidInput(f"{type(self.model).__name__} has no predict_proba")
        if self.info.signature is not None:
            data = self.info.signature.enforce(data)
        return predict_proba(data)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.info.flavor} {type(self.model).__name__}>"


def _write_example(path: Path, example: Any) -> None:
    """The first rows of the example, as JSON that ``read_example`` turns back into input the
    signature takes (dates as ISO text). An example JSON cannot hold is left out, not fatal."""
    try:
        if hasattr(example, "iloc"):
            rows = example.iloc[:EXAMPLE_ROWS]
            data = {
                "columns": json.loads(rows.to_json(orient="split", index=False, date_format="iso"))
            }
        else:
            data = {"tensor": example[:EXAMPLE_ROWS].tolist()}
        path.write_text(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError, OverflowError):
        pass


def read_example(path: str | Path) -> Any:
    """The input example saved with the model (enforced against its signature), or None."""
    folder = Path(path)
    try:
        data = json.loads((folder / EXAMPLE).read_text())
    except (OSError, ValueError):
        return None
    info = read_info(folder)
    if info.signature is None:
        return None
    try:
        # JSON keeps numbers, not their width: the values were written from input the
        # signature took, so they are put back into its dtypes before it checks them
        inputs = info.signature.inputs
        if "tensor" in data:
            import numpy as np

            dtype = getattr(inputs, "dtype", None)
            return info.signature.enforce(np.asarray(data["tensor"], dtype=dtype))
        import pandas as pd

        split = data["columns"]
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        for column in inputs if isinstance(inputs, tuple) else ():
            if column.name not in frame:
                continue
            if column.dtype == "datetime":
                frame[column.name] = pd.to_datetime(frame[column.name])
            elif column.dtype not in ("string", "object"):
                frame[column.name] = frame[column.name].astype(column.dtype)
        return info.signature.enforce(frame)
    except (InvalidInput, KeyError, TypeError, ValueError):
        return None


def read_info(path: str | Path) -> ModelInfo:
    manifest = Path(path) / MANIFEST
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise NotFound(f"no model in {str(path)!r} (it has no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {str(manifest)!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput(f"{str(manifest)!r} is not a model manifest this Shipyard reads")
    sig = data.get("signature")
    return ModelInfo(
        flavor=str(data.get("flavor")),
        config=dict(data.get("config") or {}),
        signature=Signature.from_dict(sig) if sig else None,
        python=str(data.get("python", "")),
        created_at=float(data.get("created_at", 0.0)),
    )


def load_model(path: str | Path, *, trust: bool = False) -> LoadedModel:
    """Load a model saved by ``save_model``. Pickle-based flavors need ``trust=True``."""
    info = read_info(path)
    model = flavor_named(info.flavor).load(Path(path), info.config, trust)
    loaded = LoadedModel(model, info)
    loaded.folder = Path(path)
    return loaded
