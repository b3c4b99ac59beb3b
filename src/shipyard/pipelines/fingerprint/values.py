"""Value fingerprints: a singledispatch content hash of parameter and input values.

Functions and classes as values hash by their code: ``code.py`` registers that handler, as it
needs the code walker, which itself hashes the constants it meets with ``_fingerprint``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import pickle
import threading
import types
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from shipyard.errors import InvalidInput

MAX_CONSTANT_ITEMS = 10_000
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _sha256(*parts: str | bytes | memoryview) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = memoryview(part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part)
        h.update(data.nbytes.to_bytes(8, "big"))  # length-prefixed: ("ab", "c") != ("a", "bc")
        h.update(data)
    return h.hexdigest()


def _name(obj: Any) -> str:
    """module.qualname; a function by its code, as functools.wraps copies the wrapped name."""
    if isinstance(obj, types.FunctionType):
        module = obj.__globals__.get("__name__") or "?"
        qualname = getattr(obj.__code__, "co_qualname", obj.__qualname__)
    else:
        module = getattr(obj, "__module__", None) or "?"
        qualname = getattr(obj, "__qualname__", type(obj).__qualname__)
    return f"{'__main__' if module == '__mp_main__' else module}.{qualname}"


def value_fingerprint(value: Any) -> str:
    """A stable content hash of a parameter or input value.

    JSON-like values hash canonically: dict key order does not count; list and tuple hash alike
    (parameters round-trip through JSON); ``1``, ``1.0`` and ``True`` differ (a step may behave
    differently: ``range(n)``, numpy dtypes). Sets are sorted. numpy arrays hash dtype, shape and
    bytes; pandas objects ``hash_pandas_object`` with labels and dtypes; paths their text (declare
    content with ``reads=``); project functions their code. Other objects hash their cloudpickle
    bytes, which may change between library versions or runs (a miss, never a false hit);
    ``register_fingerprint`` a stable rule for such a type.
    """
    return _fingerprint(value)


def register_fingerprint(
    cls: type,
) -> Callable[[Callable[[Any], str | bytes]], Callable[[Any], str | bytes]]:
    """Decorator: hash values of ``cls`` by the stable str/bytes token the function returns."""

    def decorate(func: Callable[[Any], str | bytes]) -> Callable[[Any], str | bytes]:
        def handler(value: Any) -> str:
            token = func(value)
            if not isinstance(token, (str, bytes)):
                raise TypeError(f"{func.__qualname__} must return str or bytes")
            return _sha256("custom", _name(type(value)), token)

        _fingerprint.register(cls, handler)
        return func

    return decorate


def _kind(value: Any, kind: str, *exact: type) -> str:
    # Subclasses (IntEnum, namedtuple, OrderedDict...) hash apart from their base type.
    return kind if type(value) in exact else _name(type(value))


@functools.singledispatch
def _fingerprint(value: Any) -> str:
    if _register_optional(type(value)):
        return _fingerprint(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _sha256("dataclass", _name(type(value)), _fingerprint(fields))
    return _sha256("pickle", _name(type(value)), _pickled(value))


def _pickled(value: Any) -> bytes:
    try:
        import cloudpickle

        dumps: Callable[..., bytes] = cloudpickle.dumps
    except ImportError:
        dumps = pickle.dumps
    try:
        return dumps(value, protocol=5)
    except Exception as exc:  # pickling fails in many ways: TypeError, PicklingError, ...
        raise InvalidInput(
            f"cannot fingerprint a {_name(type(value))}: it cannot be pickled ({exc}); "
            "teach Shipyard with shipyard.pipelines.fingerprint.register_fingerprint"
        ) from exc


_SCALAR_TOKENS: dict[type, Callable[[Any], str]] = {
    type(None): lambda v: "",
    bool: repr,
    int: lambda v: str(int(v)),
    float: lambda v: repr(float(v)),  # repr round-trips exactly, nan and -0.0 included
    complex: lambda v: repr(complex(v)),
    str: str,
}


def _scalar(value: Any) -> str:
    base = next(c for c in type(value).__mro__ if c in _SCALAR_TOKENS)
    return _sha256(_kind(value, base.__name__, base), _SCALAR_TOKENS[base](value))


for _scalar_type in _SCALAR_TOKENS:
    _fingerprint.register(_scalar_type, _scalar)


@_fingerprint.register(bytes)
@_fingerprint.register(bytearray)
@_fingerprint.register(memoryview)
def _(value: bytes | bytearray | memoryview) -> str:
    return _sha256("bytes", bytes(value))


@_fingerprint.register(list)
@_fingerprint.register(tuple)
def _(value: list[Any] | tuple[Any, ...]) -> str:
    return _sha256(_kind(value, "array", list, tuple), *map(_fingerprint, value))


@_fingerprint.register(set)
@_fingerprint.register(frozenset)
def _(value: set[Any] | frozenset[Any]) -> str:
    return _sha256(_kind(value, "set", set, frozenset), *sorted(map(_fingerprint, value)))


@_fingerprint.register(dict)
def _(value: dict[Any, Any]) -> str:
    items = sorted(_fingerprint(k) + _fingerprint(v) for k, v in value.items())
    return _sha256(_kind(value, "object", dict), *items)


@_fingerprint.register(PurePath)
def _(value: PurePath) -> str:
    return _sha256("path", value.as_posix())


@_fingerprint.register(enum.Enum)
def _(value: enum.Enum) -> str:
    return _sha256("enum", _name(type(value)), value.name, _fingerprint(value.value))


@_fingerprint.register(functools.partial)
def _(value: functools.partial[Any]) -> str:
    return _sha256(
        "partial", _fingerprint(value.func), _fingerprint(value.args), _fingerprint(value.keywords)
    )


def _register_optional(cls: type) -> bool:
    """Register numpy/pandas handlers once a value of theirs shows up (imports stay lazy)."""
    with _optional_lock:
        register = _OPTIONAL.pop(cls.__module__.partition(".")[0], None)
        if register is not None:
            register()
    return _fingerprint.dispatch(cls) is not _fingerprint.dispatch(object)


def _register_numpy() -> None:
    import numpy as np

    @_fingerprint.register(np.ndarray)
    def _(value: Any) -> str:
        if value.dtype.hasobject:  # the bytes are pointers: hash the elements instead
            return _sha256("ndarray-object", repr(value.shape), _fingerprint(value.tolist()))
        flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        dtype = f"{value.dtype.str}|{value.dtype}"
        return _sha256(_kind(value, "ndarray", np.ndarray), dtype, repr(value.shape), flat.data)

    @_fingerprint.register(np.generic)
    def _(value: Any) -> str:
        if value.dtype.hasobject:
            return _sha256("numpy-object", _fingerprint(value.item()))
        return _sha256(_name(type(value)), value.dtype.str, value.tobytes())


def _register_pandas() -> None:
    import pandas as pd

    @_fingerprint.register(pd.DataFrame)
    @_fingerprint.register(pd.Series)
    def _(value: Any) -> str:
        try:
            rows = pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes()
        except TypeError:  # unhashable cells (lists, dicts)
            return _sha256("pickle", _name(type(value)), _pickled(value))
        frame = isinstance(value, pd.DataFrame)
        labels = list(value.columns) if frame else [value.name]
        dtypes = [str(t) for t in value.dtypes] if frame else [str(value.dtype)]
        index = [str(value.index.dtype), *value.index.names]
        return _sha256(type(value).__name__, _fingerprint([labels, dtypes, index]), rows)


_OPTIONAL = {"numpy": _register_numpy, "pandas": _register_pandas}
_optional_lock = threading.Lock()


def _plain(value: Any, budget: list[int]) -> bool:
    """A constant whose value can be hashed cheaply and stably (``budget`` caps the items)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if type(value) in _SCALARS or isinstance(value, enum.Enum):
        return True
    if type(value) in (list, tuple, set, frozenset):
        return all(_plain(item, budget) for item in value)
    if type(value) is dict:
        return all(_plain(k, budget) and _plain(v, budget) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_plain(getattr(value, f.name), budget) for f in dataclasses.fields(value))
    return False


def _is_plain(value: Any) -> bool:
    return _plain(value, [MAX_CONSTANT_ITEMS])
