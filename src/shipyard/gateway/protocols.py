"""The gateway's wire protocols: request bytes to model input, predictions to response JSON.

Shipyard's JSON, MLflow's /invocations and Open Inference Protocol v2 (KServe, Triton), as
pure functions, so the HTTP layer only routes and maps errors. The errors carry their status:
InvalidInput > BadRequest (400, malformed), BadInput (422, does not fit the signature),
PayloadTooLarge (413), UnsupportedMediaType (415).

JSON and CSV numbers have no width, so they take the width the signature declares when their
values fit (1.5 -> float32, 7 -> int8); every other check is Signature.enforce's. v2 tensors
declare a datatype, so only enforce's lossless casts apply to them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, require
from shipyard.models.signature import ColumnSpec, Signature


class BadRequest(InvalidInput):
    """The request is malformed; MLflow's clients expect this code for it."""

    code = "BAD_REQUEST"


class BadInput(InvalidInput):
    """The request parsed, but its data does not fit the model's signature."""

    http_status = 422
    code = "UNPROCESSABLE"


class PayloadTooLarge(InvalidInput):
    """The request body is larger than the gateway accepts."""

    http_status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(InvalidInput):
    """The Content-Type is not one the protocol reads."""

    http_status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


V2_DATATYPES = {
    "BOOL": "bool",
    **{f"{p}INT{b}": f"{p.lower()}int{b}" for p in ("U", "") for b in (8, 16, 32, 64)},
    **{f"FP{b}": f"float{b}" for b in (16, 32, 64)},
    "BYTES": "object",
}
_V2_OF_DTYPE = {dtype: name for name, dtype in V2_DATATYPES.items() if name != "BYTES"}
# the kinds of parsed JSON arrays each datatype takes: ints are numbers to FP, bools are not
_V2_KINDS = {name: "iu" if "INT" in name else "iuf" for name in V2_DATATYPES} | {"BOOL": "b"}
_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers", "U": "strings"}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
_NUMBERS, _BOOLS = frozenset({int, float}), frozenset({bool})
_JSON, _CSV = "application/json", "text/csv"


@functools.cache
def _libs() -> tuple[Any, Any]:
    return require("numpy", "data"), require("pandas", "data")


def read_json(body: bytes) -> Any:
    """The parsed body, or BadRequest saying where the JSON breaks."""
    if not body or body.isspace():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # also undecodable bytes, absurd nesting
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def shipyard_input(body: bytes, signature: Signature | None) -> Any:
    """Model input from Shipyard JSON: records, columns, or (tensor models) inputs."""
    obj = _json_object(body)
    key = _only_key(obj, ("records", "columns", "inputs"))
    if key == "records":
        return _from_records(obj[key], key, signature)
    if key == "columns":
        return _from_columns(obj[key], key, signature)
    return _from_any(obj[key], key, signature)


def mlflow_input(body: bytes, content_type: str | None, signature: Signature | None) -> Any:
    """Model input from an MLflow /invocations request: JSON in its four forms, or CSV."""
    if _media_type(content_type) == _CSV:
        return _from_csv(body, signature)
    obj = _json_object(body)
    key = _only_key(obj, ("dataframe_split", "dataframe_records", "instances", "inputs"))
    if key == "dataframe_split":
        return _from_split(obj[key], signature)
    if key == "dataframe_records":
        return _from_records(obj[key], key, signature)
    return _from_any(obj[key], key, signature)


@dataclass
class V2Request:
    """A parsed v2 infer request: the model input and what the response must echo."""

    id: str | None
    data: Any
    output_names: list[str] | None


def v2_input(body: bytes, signature: Signature | None) -> V2Request:
    """Model input from an Open Inference Protocol v2 infer request (JSON tensors)."""
    obj = _json_object(body)
    request_id, inputs, outputs = obj.get("id"), obj.get("inputs"), obj.get("outputs")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest(f"id must be a string, got {_json_type(request_id)}")
    _optional_object(obj, "parameters", "parameters")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("inputs must be a non-empty list of tensors")
    tensors: dict[str, Any] = {}
    for i, spec in enumerate(inputs):
        name, array = _v2_tensor(spec, i)
        if name in tensors:
            raise BadRequest(f"inputs[{i}]: the name {name!r} is used twice")
        tensors[name] = array
    if outputs is not None and not (
        isinstance(outputs, list)
        and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise BadRequest("outputs must be a list of objects with a name")
    names = [o["name"] for o in outputs] if outputs else None
    data = _v2_model_input(tensors, signature)
    if len(data) == 0:  # the other protocols refuse an empty batch too
        raise BadRequest("inputs hold no rows (a batch of size 0)")
    return V2Request(request_id, data, names)


def refuse_binary(header_value: str | None) -> None:
    """Refuse Triton's binary tensor extension, which tritonclient uses by default."""
    if header_value is not None:
        raise BadRequest(
            "binary tensor data is not supported; send JSON tensors "
            "(binary_data=False in tritonclient)"
        )


def v2_response(
    predictions: Any,
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    output_names: list[str] | None,
) -> dict[str, Any]:
    """A v2 infer response: one output tensor, or one per column of a DataFrame."""
    np, pd = _libs()
    if isinstance(predictions, pd.DataFrame):
        named = [(str(c), _column_array(predictions[c])) for c in predictions.columns]
        missing = sorted(set(output_names or ()) - {n for n, _ in named})
        if missing:
            produced = ", ".join(n for n, _ in named)
            raise BadRequest(f"the model does not produce {', '.join(missing)} (only {produced})")
        named = [(n, a) for n, a in named if not output_names or n in output_names]
    else:
        array = _column_array(predictions) if isinstance(predictions, pd.Series) else None
        array = np.asarray(predictions) if array is None else array
        if output_names and set(output_names) != {"predict"}:
            asked = ", ".join(sorted(set(output_names) - {"predict"}))
            raise BadRequest(f"the model does not produce {asked} (only predict)")
        named = [("predict", array)]
    outputs = [
        {"name": name, "shape": list(a.shape), "datatype": _v2_datatype(a.dtype.name)}
        | {"data": _plain(a.reshape(-1))}
        for name, a in named
    ]
    # the spec requires "id" in responses; KServe makes one up too when none was sent
    id_ = request_id or uuid.uuid4().hex
    return {"model_name": model_name, "model_version": model_version, "id": id_, "outputs": outputs}


def v2_metadata(
    model_name: str,
    versions: list[str],
    signature: Signature | None,
    platform: str,
    *,
    output_datatype: str = "FP64",
) -> dict[str, Any]:
    """The v2 model metadata; signatures hold no outputs, so their datatype is the caller's."""
    specs = None if signature is None else signature.inputs
    inputs: list[dict[str, Any]] = []
    if isinstance(specs, tuple):
        inputs = [{"name": c.name, "datatype": _v2_datatype(c.dtype), "shape": [-1]} for c in specs]
    elif specs is not None:
        shape = [-1 if d is None or d < 0 else d for d in specs.shape]
        inputs = [{"name": "input", "datatype": _v2_datatype(specs.dtype), "shape": shape}]
    outputs = [{"name": "predict", "datatype": output_datatype, "shape": [-1]}]
    return {"name": model_name, "versions": list(versions), "platform": platform} | {
        "inputs": inputs,
        "outputs": outputs,
    }


def predictions_json(predictions: Any) -> Any:
    """Model output as plain JSON values (None for NaN); a DataFrame as records, like MLflow."""
    np, pd = _libs()
    if isinstance(predictions, pd.DataFrame):
        columns = {str(c): _plain(_column_array(predictions[c])) for c in predictions.columns}
        return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    if isinstance(predictions, (pd.Series, pd.Index)):
        return _plain(_column_array(predictions))
    if isinstance(predictions, (np.ndarray, np.generic)):
        return _plain(np.asarray(predictions))
    if isinstance(predictions, dict):
        return {k: predictions_json(v) for k, v in predictions.items()}
    if isinstance(predictions, (list, tuple)):
        return [predictions_json(v) for v in predictions]
    if isinstance(predictions, float) and not math.isfinite(predictions):
        return None
    if predictions is pd.NA or predictions is pd.NaT:
        return None
    if isinstance(predictions, bytes):
        return predictions.decode("utf-8", "replace")
    return predictions.isoformat() if hasattr(predictions, "isoformat") else predictions


def encode(obj: Any) -> bytes:
    """Compact JSON bytes of ``obj``, numpy and pandas values included (NaN as null)."""
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:  # NaN or infinity in plain Python data: only then walk all of it
        text = json.dumps(predictions_json(obj), separators=(",", ":"), allow_nan=False)
    return text.encode()


def _default(obj: Any) -> Any:
    plain = predictions_json(obj)
    if plain is obj:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")
    return plain


def _plain(array: Any) -> Any:
    """An array as nested lists, None where JSON has no number (NaN, infinity)."""
    np, _ = _libs()
    kind = array.dtype.kind
    if kind in "fc":
        bad = ~np.isfinite(array)
        if bad.any():
            array = array.astype(object)
            array[bad] = None
    elif kind in "Mm":
        return array.astype(str).tolist()
    elif kind in "OSV":
        return predictions_json(array.tolist())
    return array.tolist()


def _column_array(series: Any) -> Any:
    """A pandas column as numpy; a nullable one without nulls as its numpy dtype."""
    dtype = getattr(series.dtype, "numpy_dtype", None)  # Int64, Float64, boolean, Arrow
    if dtype is not None and dtype.kind in "biuf" and not series.isna().any():
        return series.to_numpy(dtype=dtype)
    return series.to_numpy()


def v2_datatype(dtype: str) -> str:
    """The v2 datatype of a numpy dtype name (text, dates and objects travel as BYTES)."""
    return _v2_datatype(dtype)


def _v2_datatype(dtype: str) -> str:
    return _V2_OF_DTYPE.get(dtype, "BYTES")  # strings, datetimes and objects travel as text


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), "a number")


def _json_object(body: bytes) -> dict[str, Any]:
    obj = read_json(body)
    if not isinstance(obj, dict):
        raise BadRequest(f"request body must be a JSON object, got {_json_type(obj)}")
    return obj


def _only_key(obj: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The request's one data key; as in MLflow, any other key but params is an error."""
    found = [k for k in obj if k != "params"]
    if len(found) != 1 or found[0] not in keys:
        raise BadRequest(
            f"request must be a JSON object with exactly one of {', '.join(keys)} "
            f"(and optionally params); got: {', '.join(found) or 'none'}"
        )
    _optional_object(obj, "params", "params")
    return found[0]


def _optional_object(obj: dict[str, Any], key: str, field: str) -> None:
    if obj.get(key) is not None and not isinstance(obj[key], dict):
        raise BadRequest(f"{field} must be an object, got {_json_type(obj[key])}")


@functools.lru_cache(maxsize=16)
def _media_type(content_type: str | None) -> str:
    """application/json or text/csv, each only as UTF-8, else UnsupportedMediaType."""
    media, *params = (content_type or "").lower().split(";")
    media = media.strip()
    if media not in (_JSON, _CSV):
        raise UnsupportedMediaType(
            f"unsupported content type {content_type!r}; send {_JSON} or {_CSV}"
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() != "charset" or value.strip().strip('"') not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"unsupported content type {content_type!r}; {media} is read only with "
                "charset=utf-8 and no other parameters"
            )
    return media


def _from_records(value: Any, field: str, signature: Signature | None) -> Any:
    _, pd = _libs()
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{field} must be a non-empty list of objects")
    if not all(isinstance(r, dict) for r in value):
        i = next(i for i, r in enumerate(value) if not isinstance(r, dict))
        raise BadRequest(f"{field}[{i}] must be an object, got {_json_type(value[i])}")
    if signature is not None and isinstance(signature.inputs, tuple):
        try:  # as columns, a DataFrame is built much faster than from records
            columns = {c.name: [r[c.name] for r in value] for c in signature.inputs}
        except KeyError:  # a record lacks a column: pandas fills it, enforce judges it
            pass
        else:
            fast = _fast_frame(columns, signature.inputs)
            if fast is not None:
                return fast
    return _enforce(signature, pd.DataFrame(value))


def _from_columns(value: Any, field: str, signature: Signature | None) -> Any:
    if not isinstance(value, dict) or not value:
        raise BadRequest(f"{field} must be a non-empty object of columns")
    for name, column in value.items():
        if not isinstance(column, list):
            raise BadRequest(f"{field}[{name!r}] must be a list, got {_json_type(column)}")
    lengths = {name: len(column) for name, column in value.items()}
    if len(set(lengths.values())) != 1:
        got = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise BadRequest(f"{field} must all have the same length: {got}")
    if not next(iter(lengths.values())):
        raise BadRequest(f"{field} has no rows")
    return _table(value, signature, field)


def _from_rows(rows: list[Any], field: str, names: Sequence[Any], error: type) -> Any:
    """Rows as a dict of columns named ``names``; ``error`` for a row of the wrong width."""
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise BadRequest(f"{field}[{i}] must be a row (a list), got {_json_type(row)}")
        if len(row) != len(names):
            raise error(f"{field}[{i}] has {len(row)} values, but there are {len(names)} columns")
    return dict(zip(names, zip(*rows, strict=True), strict=True))


def _from_split(value: Any, signature: Signature | None) -> Any:
    field = "dataframe_split"
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be an object with columns and data")
    data, names, index = value.get("data"), value.get("columns"), value.get("index")
    if not isinstance(data, list) or not data:
        raise BadRequest(f"{field}.data must be a non-empty list of rows")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise BadRequest(f"{field}.columns must be a list of strings")
    # the index is checked but not kept: predictions are positional
    if index is not None and not (isinstance(index, list) and len(index) == len(data)):
        raise BadRequest(f"{field}.index must be a list with one entry per row of data")
    specs = None if signature is None else signature.inputs
    if specs is not None and not isinstance(specs, tuple):
        return _enforce(signature, _array(data, f"{field}.data"))
    error: type = BadRequest
    if names is None and specs is not None:
        names, error = [c.name for c in specs], BadInput
    elif names is None:  # int names, as pandas gives them: sklearn sees no feature names
        names = list(range(len(data[0]))) if isinstance(data[0], list) else []
    return _table(_from_rows(data, f"{field}.data", names, error), signature, field)


def _from_any(value: Any, field: str, signature: Signature | None) -> Any:
    """instances/inputs: records, a dict of columns, rows, or a tensor, by the signature."""
    columnar = signature is None or isinstance(signature.inputs, tuple)
    if isinstance(value, dict):
        if columnar:
            return _from_columns(value, field, signature)
        if len(value) != 1:
            raise BadInput(f"the model takes one tensor; {field} has {len(value)}")
        field, value = f"{field}[{next(iter(value))!r}]", next(iter(value.values()))
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{field} must be a non-empty list")
    if columnar and all(isinstance(r, dict) for r in value):
        return _from_records(value, field, signature)
    if signature is not None and isinstance(signature.inputs, tuple):
        names = [c.name for c in signature.inputs]
        if len(names) == 1 and not any(isinstance(v, (list, dict)) for v in value):
            return _table({names[0]: value}, signature, field)
        return _table(_from_rows(value, field, names, BadInput), signature, field)
    return _enforce(signature, _array(value, field))


def _from_csv(body: bytes, signature: Signature | None) -> Any:
    _, pd = _libs()
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, TypeError, OverflowError) as exc:  # ParserError, EmptyDataError
        raise BadRequest(f"request body is not valid CSV: {exc}") from None
    if frame.empty:
        raise BadRequest("request body has no CSV rows")
    if signature is not None and isinstance(signature.inputs, tuple):
        fast = _fast_frame({str(c): a.to_numpy() for c, a in frame.items()}, signature.inputs)
        if fast is not None:
            return fast
    return _enforce(signature, frame)


def _array(value: Any, field: str, dtype: Any = None) -> Any:
    np, _ = _libs()
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadRequest(f"{field} is not a rectangular array: {exc}") from None


def _table(columns: dict[Any, Any], signature: Signature | None, field: str) -> Any:
    """Columns as the model's DataFrame (or array, for a tensor model)."""
    _, pd = _libs()
    if signature is not None and isinstance(signature.inputs, tuple):
        fast = _fast_frame(columns, signature.inputs)
        if fast is not None:
            return fast
    try:
        frame = pd.DataFrame(columns)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{field} cannot be read as columns: {exc}") from None
    return _enforce(signature, frame)


@functools.lru_cache(maxsize=64)
def _numeric(dtype: str) -> Any:
    """The numpy dtype of a signature's dtype name if it is a number or bool, else None."""
    np, _ = _libs()
    try:
        found = np.dtype(dtype)
    except TypeError:  # "string", "datetime"
        return None
    return found if found.kind in "biuf" else None


@functools.lru_cache(maxsize=128)
def _plan(specs: tuple[ColumnSpec, ...]) -> tuple[Any, list[Any]] | None:
    """The column index and numpy dtypes of an all-numeric signature, else None."""
    _, pd = _libs()
    dtypes = [_numeric(c.dtype) for c in specs]
    if not specs or any(d is None for d in dtypes):
        return None
    return pd.Index([c.name for c in specs]), dtypes


def _fast_frame(columns: dict[Any, Any], specs: tuple[ColumnSpec, ...]) -> Any:
    """What Signature.enforce returns for these numeric columns (JSON lists or typed arrays),
    without its ~0.4 ms of pandas calls; None for anything else (missing columns, nulls,
    text), which goes through enforce for its checks and messages."""
    np, pd = _libs()
    plan = _plan(specs)
    if plan is None:
        return None
    names, dtypes = plan
    arrays = []
    for spec, want in zip(specs, dtypes, strict=True):
        values = columns.get(spec.name)
        if values is None:
            return None
        if not isinstance(values, np.ndarray):
            kinds = set(map(type, values))  # mixed bools and numbers: pandas makes objects
            if not (kinds <= _NUMBERS or kinds == _BOOLS):
                return None
            values = _fit(np.asarray(values), want)
        if values.dtype.kind not in "biuf" or not np.can_cast(values.dtype, want, "safe"):
            return None
        arrays.append(values.astype(want, copy=False))
    rows = pd.RangeIndex(len(arrays[0]))
    if len(set(dtypes)) == 1:  # one block: ~5x faster to build than a dict of columns
        return pd.DataFrame(np.vstack(arrays).T, index=rows, columns=names, copy=False)
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), index=rows, copy=False)


def _fit(array: Any, want: Any) -> Any:
    """A parsed JSON/CSV array as dtype ``want`` when its values fit, else unchanged."""
    np, _ = _libs()
    have = array.dtype
    if have == want or have.kind not in "iuf" or want.kind not in "iuf":
        return array
    if want.kind == "f":
        with np.errstate(over="raise", invalid="raise"):
            try:
                return array.astype(want)
            except FloatingPointError:  # too large for float16/float32
                return array
    if have.kind in "iu":
        info = np.iinfo(want)
        fits = not array.size or (info.min <= array.min() and array.max() <= info.max)
        return array.astype(want) if fits else array
    return array  # floats for ints: enforce refuses them


def _enforce(signature: Signature | None, data: Any, *, narrow: bool = True) -> Any:
    """``data`` through the signature, first fitting parsed numbers to its widths."""
    np, pd = _libs()
    if signature is None:
        return data
    if narrow and isinstance(signature.inputs, tuple) and isinstance(data, pd.DataFrame):
        for spec in signature.inputs:
            want = _numeric(spec.dtype)
            column = data.get(spec.name)
            if want is not None and column is not None and isinstance(column.dtype, np.dtype):
                data[spec.name] = _fit(column.to_numpy(), want)
    elif narrow and not isinstance(signature.inputs, tuple):
        data = data.to_numpy() if isinstance(data, pd.DataFrame) else data
        want = _numeric(signature.inputs.dtype)
        data = data if want is None else _fit(data, want)
    try:
        return signature.enforce(data)
    except InvalidInput as exc:
        raise BadInput(exc.message) from None


def _v2_tensor(spec: Any, i: int) -> tuple[str, Any]:
    """One v2 input, checked against its own shape and datatype, as a numpy array."""
    np, _ = _libs()
    if not isinstance(spec, dict):
        raise BadRequest(f"inputs[{i}] must be an object, got {_json_type(spec)}")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str):
        raise BadRequest(f"inputs[{i}].name must be a string, got {_json_type(name)}")
    where = f"input {name!r}"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    if not isinstance(datatype, str) or datatype not in V2_DATATYPES:
        raise BadRequest(
            f"{where}: datatype must be one of {', '.join(V2_DATATYPES)}, got {datatype!r}"
        )
    _optional_object(spec, "parameters", f"{where}: parameters")
    data = spec.get("data")
    if not isinstance(data, list):
        raise BadRequest(f"{where}: data must be a list, got {_json_type(data)}")
    if datatype == "BYTES":  # object arrays keep what was sent, so numbers are caught here
        array = _array(data, f"{where}: data", object)
        if not all(type(v) is str for v in array.flat):
            raise BadRequest(f"{where}: data must be strings for datatype BYTES")
    else:
        array, want = _array(data, f"{where}: data"), np.dtype(V2_DATATYPES[datatype])
        if datatype == "UINT64" and array.dtype.kind == "f":  # numpy reads [0, 2**64-1] so
            exact = _array(data, f"{where}: data", object)
            if all(type(v) is int for v in exact.flat):
                with contextlib.suppress(OverflowError):  # negative or > 2**64 - 1: refused below
                    array = exact.astype(want)
        if array.size and array.dtype.kind not in _V2_KINDS[datatype]:
            got = _KINDS.get(array.dtype.kind, "mixed values")
            raise BadRequest(f"{where}: data must be {datatype} values, got {got}")
        array = _fit(array, want) if array.size else array.astype(want)
        if array.dtype != want:
            raise BadRequest(f"{where}: data has values out of the range of {datatype}")
    if array.size != math.prod(shape):
        raise BadRequest(
            f"{where}: data has {array.size} elements, but shape {shape} needs {math.prod(shape)}"
        )
    return name, array.reshape(shape)


def _v2_model_input(tensors: dict[str, Any], signature: Signature | None) -> Any:
    """The model's input from named tensors: the one tensor, or a DataFrame of columns."""
    specs = None if signature is None else signature.inputs
    if not isinstance(specs, tuple):
        if len(tensors) == 1:
            array = next(iter(tensors.values()))
            return array if signature is None else _enforce(signature, array, narrow=False)
        if signature is not None:
            raise BadInput(f"the model takes one tensor, got {len(tensors)}: {', '.join(tensors)}")
    else:
        names = [c.name for c in specs]
        if len(tensors) == 1:
            ((name, array),) = tensors.items()
            if array.ndim == 2 and (array.shape[1] != 1 or name not in names):
                if array.shape[1] != len(names):  # enforce says how many columns it takes
                    return _enforce(signature, array, narrow=False)
                tensors = dict(zip(names, array.T, strict=True))  # the signature's columns
        unknown = [n for n in tensors if n not in names]
        if unknown:
            raise BadInput(
                f"unknown inputs: {', '.join(unknown)} (the model takes: {', '.join(names)})"
            )
    columns = {}
    for name, array in tensors.items():
        if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
            raise BadInput(
                f"input {name!r} has shape {list(array.shape)}; a column is [N] or [N, 1]"
            )
        columns[name] = array.reshape(-1)
    if len({len(a) for a in columns.values()}) != 1:
        got = ", ".join(f"{n} has {len(a)}" for n, a in columns.items())
        raise BadRequest(f"input columns must all have the same length: {got}")
    fast = _fast_frame(columns, specs) if isinstance(specs, tuple) else None
    if fast is not None:
        return fast
    _, pd = _libs()
    return _enforce(signature, pd.DataFrame(columns), narrow=False)
