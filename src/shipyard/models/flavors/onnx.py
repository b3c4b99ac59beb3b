"""ONNX models: an ``onnx.ModelProto`` written as a .onnx file and run by onnxruntime on CPU.

An ONNX file is operators and weights, no code, so loading one needs no trust. A model with
one input takes an array (or a DataFrame, as its values); a model with several inputs, as
converters such as skl2onnx write them, takes a DataFrame with one column per input name.
``predict`` returns the first output (for a classifier: the labels).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models.flavors.base import Flavor


class OnnxFlavor(Flavor):
    name = "onnx"
    FILE = "model.onnx"

    def handles(self, model: Any) -> bool:
        onnx = sys.modules.get("onnx")  # not an ONNX model if onnx is not loaded
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: Any, folder: Path) -> dict[str, Any]:
        onnx: Any = require("onnx", "onnx")
        try:
            onnx.checker.check_model(model)  # refuse a broken graph now, not at serving time
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"not a valid ONNX model: {exc}") from None
        onnx.save_model(model, folder / self.FILE)
        weights = {i.name for i in model.graph.initializer}
        return {
            "file": self.FILE,
            "onnx_version": onnx.__version__,
            "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
            # old exporters list weights among the inputs; a caller feeds only the others
            "inputs": [i.name for i in model.graph.input if i.name not in weights],
            "outputs": [o.name for o in model.graph.output],
        }

    def load(self, folder: Path, config: dict[str, Any], trust: bool) -> Any:
        ort: Any = require("onnxruntime", "onnx")
        path = folder / config.get("file", self.FILE)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return OnnxPredictor(session)


class OnnxPredictor:
    """A loaded ONNX model: ``predict`` feeds its inputs and returns its first output."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = session.get_inputs()
        self.output = session.get_outputs()[0].name
        errors: Any = require("onnxruntime.capi.onnxruntime_pybind11_state", "onnx")
        self._refused = errors.InvalidArgument  # wrong dtype or shape: the caller's mistake

    def predict(self, data: Any) -> Any:
        feed = self._feed(data)
        try:
            return self.session.run([self.output], feed)[0]
        except self._refused as exc:
            raise InvalidInput(f"the ONNX model refused its input: {exc}") from None

    def _feed(self, data: Any) -> dict[str, Any]:
        np: Any = require("numpy", "data")
        if len(self.inputs) == 1:
            values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            return {self.inputs[0].name: values}
        names = [i.name for i in self.inputs]
        if not hasattr(data, "columns"):
            raise InvalidInput(
                f"this ONNX model takes {len(names)} inputs ({', '.join(names)}); "
                "pass a DataFrame with one column per input"
            )
        missing = [n for n in names if n not in data.columns]
        if missing:
            raise InvalidInput(f"model input is missing column(s) {', '.join(missing)}")
        # an input of rank 2 takes a column as shape (rows, 1), as skl2onnx writes them
        return {
            i.name: data[i.name].to_numpy().reshape(-1, 1)
            if len(i.shape or ()) == 2
            else data[i.name].to_numpy()
            for i in self.inputs
        }

    def __repr__(self) -> str:
        return f"<OnnxPredictor inputs={[i.name for i in self.inputs]} output={self.output}>"
