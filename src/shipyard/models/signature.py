"""Model signatures: inferred from an input example, stored as JSON, enforced on input.

A signature is either named columns with dtypes (a DataFrame-like input) or one tensor with a
dtype and a shape (an array input; ``None`` marks a dimension of any size, such as the
batch). Enforcing it turns what a caller sent into exactly what the model was trained on, or
raises InvalidInput saying which column or dimension is wrong. Only safe casts are made
(int32 -> int64, int -> float, float32 -> float64), never lossy ones (float -> int).

pandas' nullable columns (Float64, Int64, boolean, string; Arrow-backed ones from Parquet)
count as their numpy dtype, and enforcing turns them into it: a missing value becomes NaN
in a float column, and is refused in an int or bool column, which cannot hold one.
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

    def examples(self) -> list[Any]:
        """One-row inputs it takes: its required columns alone, then all of its columns (one
        input for a tensor): zeros, "a" for text, a date for datetimes."""
        np: Any = require("numpy", "data")
        pd: Any = require("pandas", "data")
        if isinstance(self.inputs, TensorSpec):
            shape = tuple(1 if d is None or d < 0 else d for d in self.inputs.shape)
            try:
                return [np.zeros(shape, dtype=self.inputs.dtype)]
            except TypeError:
                return [np.zeros(shape, dtype=object)]

        def column(dtype: str) -> Any:
            if dtype == STRING:
                return pd.Series(["a"], dtype=object)
            if dtype == DATETIME:
                return pd.Series(pd.to_datetime(["2024-01-01"]))
            try:
                return pd.Series(np.zeros(1, dtype=dtype))
            except TypeError:
                return pd.Series([None], dtype=object)

        required = [c for c in self.inputs if c.required]
        frames = [pd.DataFrame({c.name: column(c.dtype) for c in required})]
        if len(required) < len(self.inputs):
            frames.append(pd.DataFrame({c.name: column(c.dtype) for c in self.inputs}))
        return frames

    def refuses(self, other: Signature) -> str | None:
        """Why input that ``other`` takes would be refused by this signature (None: it
        takes all of it), so callers of one can call the other unchanged."""
        for example in other.examples():
            try:
                self.enforce(example)
            except InvalidInput as exc:
                return exc.message
        return None

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
        # a nullable extension dtype (Float64, Int64, boolean, int64[pyarrow]) has a
        # numpy_dtype; np.dtype() of the extension dtype itself raises TypeError
        return str(np.dtype(getattr(dtype, "numpy_dtype", dtype)).name)
    if kind == "M":
        return DATETIME
    if str(dtype) in ("string", "str") or kind in "US":
        return STRING
    # object columns of text are the usual way pandas holds strings
    sample = values.dropna() if hasattr(values, "dropna") else values
    if len(sample) and all(isinstance(v, str) for v in list(sample)[:1000]):
        return STRING
    return OBJECT


def _described(series: Any) -> str:
    """A column's type for a message: its signature dtype, or "category"."""
    return "category" if str(series.dtype) == "category" else _dtype_name(series.dtype, series)


def _listed(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _enforce_columns(columns: tuple[ColumnSpec, ...], data: Any) -> Any:
    np: Any = require("numpy", "data")
    pd: Any = require("pandas", "data")
    taken = [c.name for c in columns]
    if isinstance(data, np.ndarray):
        width = data.shape[1] if data.ndim == 2 else None
        if width != len(columns):
            got = f"{width}" if width is not None else f"an array of shape {data.shape}"
            raise InvalidInput(
                f"model input: expected {len(columns)} columns ({_listed(taken)}), got {got}"
            )
        data = pd.DataFrame(data, columns=taken)
    frame = _as_frame(data)
    names = [str(c) for c in frame.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"model input has duplicate columns: {', '.join(dupes)}")
    missing = [c.name for c in columns if c.required and c.name not in names]
    if missing:
        raise InvalidInput(
            f"model input is missing column{'s' * (len(missing) > 1)} {', '.join(missing)} "
            f"(the model takes: {', '.join(taken)})"
        )
    frame = frame.rename(columns=str)
    present = [c for c in columns if c.name in names]
    out = frame[[c.name for c in present]].copy()  # extra columns are left out
    wrong, holes = [], []
    for spec in present:
        column = out[spec.name]
        converted = _convert(column, spec.dtype)
        if converted is None:
            wrong.append(f"{spec.name!r} is {_described(column)}, the model takes {spec.dtype}")
        elif converted is _HOLES:
            count = int(column.isna().sum())
            holes.append(
                f"{spec.name!r} has missing values in {count} row{'s' * (count != 1)}; "
                f"the model takes {spec.dtype}, which cannot hold them"
            )
        else:
            out[spec.name] = converted
    problems = []
    if wrong:
        problems.append("model input has the wrong types: " + "; ".join(wrong))
    if holes:
        problems.append("model input has missing values: " + "; ".join(holes))
    if problems:
        raise InvalidInput("; ".join(problems))
    return out


_HOLES = object()  # what _convert returns for missing values the model's dtype cannot hold


def _convert(series: Any, want: str) -> Any:
    """The column as ``want`` by a safe cast, or None when that would lose information (or
    _HOLES when a nullable column has missing values ``want`` cannot hold)."""
    np: Any = require("numpy", "data")
    got = _dtype_name(series.dtype, series)
    if want in (STRING, OBJECT):
        return _plain_text(series) if got in (STRING, OBJECT) else None
    if got == DATETIME or want == DATETIME:
        return series if got == want else None
    if got in (STRING, OBJECT):
        return None
    source, target = np.dtype(got), np.dtype(want)
    if not np.can_cast(source, target, casting="safe"):
        return None
    if isinstance(series.dtype, np.dtype):
        return series if source == target else series.astype(target)
    return _from_nullable(series, target)


def _from_nullable(series: Any, target: Any) -> Any:
    """A nullable (extension) column as a numpy one of ``target``: pd.NA as NaN in floats."""
    np: Any = require("numpy", "data")
    pd: Any = require("pandas", "data")
    holes = bool(series.isna().any())
    if holes and target.kind != "f":
        return _HOLES
    values = (
        series.to_numpy(dtype=target, na_value=np.nan) if holes else series.to_numpy(dtype=target)
    )
    return pd.Series(values, index=series.index, name=series.name)


def _plain_text(series: Any) -> Any:
    """Text as object strings with NaN for missing, when pandas holds it with pd.NA (the
    "string" dtype, Arrow strings): models and encoders test missing text with NaN."""
    np: Any = require("numpy", "data")
    pd: Any = require("pandas", "data")
    if str(series.dtype) == "category" or getattr(series.dtype, "na_value", None) is not pd.NA:
        return series
    return series.astype(object).where(series.notna(), np.nan)


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
