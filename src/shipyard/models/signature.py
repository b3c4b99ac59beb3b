"""Model signatures: inferred from an input example, stored as JSON, enforced on input.

A signature is either named columns with dtypes (a DataFrame-like input) or one tensor with a
dtype and a shape (an array input; ``None`` marks a dimension of any size, such as the
batch). Enforcing it turns what a caller sent into exactly what the model was trained on, or
raises InvalidInput saying which column or dimension is wrong. Only safe casts are made
(int32 -> int64, int -> float, float32 -> float64), never lossy ones (float -> int).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, require

STRING, DATETIME, OBJECT = "string", "datetime", "object"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: str  # a numpy dtype name ("int64", "float32", "bool"), "string" or "datetime"
    required: bool = True


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int | None, ...]  # None: any size (the batch dimension, usually)


@dataclass(frozen=True)
class Signature:
    """What a model takes: columns, or one tensor."""

    inputs: tuple[ColumnSpec, ...] | TensorSpec

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.inputs, TensorSpec)

    def to_dict(self) -> dict[str, Any]:
        if isinstance(self.inputs, TensorSpec):
            return {"tensor": {"dtype": self.inputs.dtype, "shape": list(self.inputs.shape)}}
        return {
            "columns": [
                {"name": c.name, "dtype": c.dtype, "required": c.required} for c in self.inputs
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        try:
            if "tensor" in data:
                spec = data["tensor"]
                return cls(TensorSpec(str(spec["dtype"]), tuple(spec["shape"])))
            columns = tuple(
                ColumnSpec(str(c["name"]), str(c["dtype"]), bool(c.get("required", True)))
                for c in data["columns"]
            )
            return cls(columns)
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"not a model signature: {dict(data)!r:.200}") from exc

    def enforce(self, data: Any) -> Any:
        """``data`` shaped and typed as the signature says (a DataFrame or an ndarray)."""
        if isinstance(self.inputs, TensorSpec):
            return _enforce_tensor(self.inputs, data)
        return _enforce_columns(self.inputs, data)


def infer_signature(example: Any) -> Signature:
    """The signature of an input example: a pandas DataFrame, a numpy array, or a dict of
    columns / list of records (read as a DataFrame)."""
    np: Any = require("numpy", "data")
    if isinstance(example, np.ndarray):
        if example.ndim == 0:
            raise InvalidInput("an input example must have at least one dimension")
        shape = (None, *example.shape[1:])  # the first dimension is the batch
        return Signature(TensorSpec(_dtype_name(example.dtype, example), shape))
    frame = _as_frame(example)
    if frame.columns.has_duplicates:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InvalidInput(f"an input example has duplicate columns: {', '.join(dupes)}")
    return Signature(
        tuple(
            ColumnSpec(str(name), _dtype_name(frame[name].dtype, frame[name]))
            for name in frame.columns
        )
    )


def _as_frame(data: Any) -> Any:
    pd: Any = require("pandas", "data")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping) or (
        isinstance(data, Sequence) and not isinstance(data, (str, bytes))
    ):
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot read the input as columns: {exc}") from None
    raise InvalidInput(
        f"model input must be a DataFrame, a dict of columns or a list of records, "
        f"got {type(data).__name__}"
    )


def _dtype_name(dtype: Any, values: Any) -> str:
    np: Any = require("numpy", "data")
    kind = getattr(dtype, "kind", "O")
    if kind in "biuf":
        return str(np.dtype(dtype).name)
    if kind == "M":
        return DATETIME
    if str(dtype) in ("string", "str") or kind in "US":
        return STRING
    # object columns of text are the usual way pandas holds strings
    sample = values.dropna() if hasattr(values, "dropna") else values
    if len(sample) and all(isinstance(v, str) for v in list(sample)[:1000]):
        return STRING
    return OBJECT


def _enforce_columns(columns: tuple[ColumnSpec, ...], data: Any) -> Any:
    np: Any = require("numpy", "data")
    if isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == len(columns):
        pd: Any = require("pandas", "data")
        data = pd.DataFrame(data, columns=[c.name for c in columns])
    frame = _as_frame(data)
    names = [str(c) for c in frame.columns]
    missing = [c.name for c in columns if c.required and c.name not in names]
    if missing:
        raise InvalidInput(
            f"model input is missing column{'s' * (len(missing) > 1)} {', '.join(missing)} "
            f"(the model takes: {', '.join(c.name for c in columns)})"
        )
    frame = frame.rename(columns=str)
    present = [c for c in columns if c.name in names]
    out = frame[[c.name for c in present]].copy()  # extra columns are left out
    wrong = []
    for spec in present:
        converted = _convert(out[spec.name], spec.dtype)
        if converted is None:
            got = _dtype_name(out[spec.name].dtype, out[spec.name])
            wrong.append(f"{spec.name!r} is {got}, the model takes {spec.dtype}")
        else:
            out[spec.name] = converted
    if wrong:
        raise InvalidInput("model input has the wrong types: " + "; ".join(wrong))
    return out


def _convert(series: Any, want: str) -> Any:
    """The column as ``want`` by a safe cast, or None when that would lose information."""
    np: Any = require("numpy", "data")
    got = _dtype_name(series.dtype, series)
    if got == want:
        return series
    if want in (STRING, OBJECT):
        return series if got in (STRING, OBJECT) else None
    if want == DATETIME or got in (STRING, OBJECT, DATETIME):
        return None
    if np.can_cast(np.dtype(got), np.dtype(want), casting="safe"):
        return series.astype(want)
    return None


def _enforce_tensor(spec: TensorSpec, data: Any) -> Any:
    np: Any = require("numpy", "data")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"model input is not an array: {exc}") from None
    if array.ndim != len(spec.shape):
        raise InvalidInput(
            f"model input has {array.ndim} dimension{'s' * (array.ndim != 1)}, "
            f"the model takes {len(spec.shape)} (shape {_shape(spec.shape)})"
        )
    for axis, (size, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
        if want is not None and want >= 0 and size != want:
            raise InvalidInput(
                f"model input has size {size} in dimension {axis}, the model takes {want} "
                f"(shape {_shape(spec.shape)})"
            )
    if array.dtype.name == spec.dtype:
        return array
    if array.dtype.kind in "biuf" and np.can_cast(array.dtype, np.dtype(spec.dtype), "safe"):
        return array.astype(spec.dtype)
    raise InvalidInput(
        f"model input is {array.dtype.name}, the model takes {spec.dtype} "
        "(only casts that lose nothing are made)"
    )


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("any" if s is None or s < 0 else str(s) for s in shape) + ")"
