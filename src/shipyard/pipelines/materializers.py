"""Materializers: how a step's output is written to a folder by its type, and read back.

``save_output(value, folder)`` picks the first materializer that takes the value and returns
the meta to keep beside the files; ``load_output(folder, meta)`` reads it back. The caller
writes into a fresh temporary folder and uploads it to the artifact store.

Lookup order: materializers registered with ``register_materializer``, most specific type
first (the value's MRO), then the built-ins in this order:

- ``dataframe``: a ``pandas.DataFrame`` (exact type), as Parquet with its index
- ``series``: a ``pandas.Series`` (exact type), as Parquet of a one-column frame
- ``numpy``: an ``ndarray`` (exact type) or numpy scalar without Python objects, as ``.npy``
- ``sklearn``: a scikit-learn estimator, through skops (``shipyard.models`` sklearn flavor)
- ``json``: None, bool, int, float, str, list, tuple and dict (exact types, nested)
- ``bytes``: ``bytes`` or ``bytearray``, as a raw file
- ``pickle``: anything else, through cloudpickle, with a ``PickleWarning``

Subclasses (a GeoDataFrame, an IntEnum, an OrderedDict) go to pickle rather than lose their
type. A built-in that fails on a value (a frame Parquet cannot hold, an estimator holding a
lambda) falls back to pickle too, with a warning saying why.

Trust: outputs are read back from the project's own artifact store, which is trusted: the
pickle fallback already runs code from it. So a skops file loads with the types listed in
its meta at save time (a project-local transformer class loads), and skops still refuses any
type in the file that is not listed.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar, overload

from shipyard.errors import InvalidInput, require

_RESERVED = ("materializer", "type")


class PickleWarning(UserWarning):
    """A step output was stored with cloudpickle: fragile across library versions."""


class Materializer:
    """Writes values of some types into a folder and reads them back.

    Subclasses set ``name`` (stored in the meta, so it must stay stable) and implement
    ``save`` and ``load``; ``types`` is what ``@register_materializer`` registers them for.
    """

    name: ClassVar[str]
    types: ClassVar[tuple[type, ...]] = ()

    def handles(self, value: Any) -> bool:
        """Whether this materializer takes ``value``; a registered one takes its types."""
        return True

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        """Write ``value`` into ``folder``; return JSON-able meta that ``load`` needs."""
        raise NotImplementedError

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        raise NotImplementedError


def _qualname(type_: type) -> str:
    return f"{type_.__module__}.{type_.__qualname__}"


class _DataFrameMaterializer(Materializer):
    name = "dataframe"
    FILE = "data.parquet"

    def handles(self, value: Any) -> bool:
        # No pandas object can exist before pandas is imported; this keeps lookups cheap.
        if "pandas" not in sys.modules:
            return False
        import pandas as pd

        return type(value) is pd.DataFrame

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        value.to_parquet(folder / self.FILE, engine="pyarrow")
        return {}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        pd: Any = require("pandas", "data")
        require("pyarrow", "data")
        return pd.read_parquet(folder / self.FILE, engine="pyarrow")


class _SeriesMaterializer(_DataFrameMaterializer):
    name = "series"
    COLUMN = "values"

    def handles(self, value: Any) -> bool:
        if "pandas" not in sys.modules:
            return False
        import pandas as pd

        return type(value) is pd.Series

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        # Parquet wants string column names; the name (maybe None, an int, a tuple) goes in meta.
        name = _to_json(value.name)
        value.to_frame(name=self.COLUMN).to_parquet(folder / self.FILE, engine="pyarrow")
        return {"name": name}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        frame = super().load(folder, meta)
        return frame[self.COLUMN].rename(_from_json(meta.get("name")))


class _NumpyMaterializer(Materializer):
    name = "numpy"
    FILE = "array.npy"

    def handles(self, value: Any) -> bool:
        if "numpy" not in sys.modules:
            return False
        import numpy as np

        if type(value) is np.ndarray or isinstance(value, np.generic):
            return not value.dtype.hasobject  # object arrays need pickle
        return False

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        import numpy as np

        np.save(folder / self.FILE, value, allow_pickle=False)
        return {"scalar": isinstance(value, np.generic)}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        np: Any = require("numpy", "data")
        array = np.load(folder / self.FILE, allow_pickle=False)
        return array[()] if meta.get("scalar") else array


_MAIN_MODULES = ("__main__.", "__mp_main__.")


class _SklearnMaterializer(Materializer):
    name = "sklearn"

    def handles(self, value: Any) -> bool:
        return "sklearn" in sys.modules and self._flavor().handles(value)

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        meta = self._flavor().save(value, folder)
        # skops refers to functions and classes by import name; these names cannot be
        # imported by a later load (or another process), while cloudpickle stores them by value.
        unreachable = [t for t in meta["types"] if "<" in t or t.startswith(_MAIN_MODULES)]
        if unreachable:
            raise ValueError(f"skops cannot refer to {', '.join(unreachable[:3])} by name")
        return meta

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        return self._flavor().load(folder, meta, trust=True)

    @staticmethod
    def _flavor() -> Any:
        from shipyard.models.flavors.sklearn import SklearnFlavor

        return SklearnFlavor()


class _NotJSON(TypeError):
    pass


# Values JSON has no form for are stored as {_MARK: kind, ...}. A user dict holding _MARK as a
# key is stored as pairs, so every dict with _MARK in the file is one of ours.
_MARK = "__shipyard__"


def _to_json(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else {_MARK: "float", "value": repr(value)}
    if kind is list:
        return [_to_json(item) for item in value]
    if kind is tuple:
        return {_MARK: "tuple", "items": [_to_json(item) for item in value]}
    if kind is dict:
        if _MARK not in value and all(type(key) is str for key in value):
            return {key: _to_json(item) for key, item in value.items()}
        return {_MARK: "dict", "items": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    raise _NotJSON(f"{_qualname(kind)} has no JSON form")


def _decode_marked(obj: dict[str, Any]) -> Any:
    kind = obj.get(_MARK)
    if kind is None:
        return obj
    if kind == "float":
        return float(obj["value"])
    if kind == "tuple":
        return tuple(obj["items"])
    if kind == "dict":
        return {key: item for key, item in obj["items"]}
    raise InvalidInput(f"unknown JSON marker {kind!r} in a stored output")


def _from_json(obj: Any) -> Any:
    # Round-trip through text so the decoding hook sees every nested dict once.
    return json.loads(json.dumps(obj), object_hook=_decode_marked)


class _JSONMaterializer(Materializer):
    name = "json"
    FILE = "value.json"

    def handles(self, value: Any) -> bool:
        try:
            _to_json(value)
        except (_NotJSON, RecursionError):
            return False
        return True

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        (folder / self.FILE).write_text(json.dumps(_to_json(value), allow_nan=False), "utf-8")
        return {}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        text = (folder / self.FILE).read_text("utf-8")
        return json.loads(text, object_hook=_decode_marked)


class _BytesMaterializer(Materializer):
    name = "bytes"
    FILE = "value.bin"

    def handles(self, value: Any) -> bool:
        return type(value) is bytes or type(value) is bytearray

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        (folder / self.FILE).write_bytes(value)
        return {"bytearray": type(value) is bytearray}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        data = (folder / self.FILE).read_bytes()
        return bytearray(data) if meta.get("bytearray") else data


class _PickleMaterializer(Materializer):
    name = "pickle"
    FILE = "value.pkl"

    def save(self, value: Any, folder: Path) -> dict[str, Any]:
        cloudpickle: Any = require("cloudpickle", "models")
        with open(folder / self.FILE, "wb") as file:
            cloudpickle.dump(value, file)
        python = ".".join(map(str, sys.version_info[:2]))
        return {"python": python, "cloudpickle": cloudpickle.__version__}

    def load(self, folder: Path, meta: dict[str, Any]) -> Any:
        cloudpickle: Any = require("cloudpickle", "models")
        with open(folder / self.FILE, "rb") as file:
            return cloudpickle.load(file)


_PICKLE = _PickleMaterializer()
_JSON = _JSONMaterializer()
_BYTES = _BytesMaterializer()
_BUILTINS: list[Materializer] = [
    _DataFrameMaterializer(),
    _SeriesMaterializer(),
    _NumpyMaterializer(),
    _SklearnMaterializer(),
    _JSON,
    _BYTES,
    _PICKLE,
]
_REGISTERED: dict[type, Materializer] = {}

_M = TypeVar("_M", bound="type[Materializer]")


@overload
def register_materializer(type_: _M, materializer: None = None) -> _M: ...


@overload
def register_materializer(type_: type, materializer: Materializer) -> Materializer: ...


def register_materializer(type_: type, materializer: Materializer | None = None) -> Any:
    """Store values of ``type_`` (and its subclasses) with ``materializer``.

    Also a class decorator: ``@register_materializer`` on a ``Materializer`` subclass
    registers one instance of it for each type in its ``types``. Registering a type again
    replaces its materializer.
    """
    if materializer is not None:
        _register(type_, materializer)
        return materializer
    if not (isinstance(type_, type) and issubclass(type_, Materializer)):
        raise InvalidInput(
            f"register_materializer({type_!r}) needs a materializer: call "
            "register_materializer(SomeType, MyMaterializer()), or decorate a Materializer "
            "subclass that lists its types in `types`"
        )
    if not type_.types:
        raise InvalidInput(f"{_qualname(type_)} lists no `types` to register it for")
    instance = type_()
    for registered in type_.types:
        _register(registered, instance)
    return type_


def _register(type_: type, materializer: Materializer) -> None:
    if not isinstance(type_, type):
        raise InvalidInput(f"materializers are registered for a type, not {type_!r}")
    if not isinstance(materializer, Materializer):
        raise InvalidInput(f"{materializer!r} is not a shipyard Materializer")
    name = getattr(materializer, "name", None)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{_qualname(type(materializer))} must set a `name`")
    # The name is what a stored output's meta points at, so it must mean one class. Compared
    # by qualified name so re-running a notebook cell that defines the class still works.
    for other in [*_BUILTINS, *_REGISTERED.values()]:
        if other.name == name and _qualname(type(other)) != _qualname(type(materializer)):
            raise InvalidInput(
                f"materializer name {name!r} is taken by {_qualname(type(other))}; "
                f"give {_qualname(type(materializer))} another name"
            )
    _REGISTERED[type_] = materializer


def materializer_for(value: Any) -> Materializer:
    """The materializer ``save_output`` would use for ``value``."""
    for cls in type(value).__mro__:
        registered = _REGISTERED.get(cls)
        if registered is not None and registered.handles(value):
            return registered
    for builtin in _BUILTINS:
        if builtin.handles(value):
            return builtin
    raise AssertionError("the pickle materializer takes every value")  # pragma: no cover


def encode_small(value: Any) -> tuple[str, bytes, dict[str, Any]] | None:
    """(file name, bytes, meta) of a JSON-able or bytes value, made in memory: the same file
    and meta ``save_output`` would write, without a folder. None for any other value (or one
    a registered materializer claims)."""
    materializer = materializer_for(value)
    if materializer is _JSON:
        try:
            data = json.dumps(_to_json(value), allow_nan=False).encode("utf-8")
        except (ValueError, TypeError, RecursionError):
            return None  # save_output's path falls back to cloudpickle, with its warning
        extra: dict[str, Any] = {}
    elif materializer is _BYTES:
        data, extra = bytes(value), {"bytearray": type(value) is bytearray}
    else:
        return None
    meta = {**extra, "materializer": materializer.name, "type": _qualname(type(value))}
    return materializer.FILE, data, meta


def decode_small(data: bytes, meta: dict[str, Any]) -> Any:
    """A value ``encode_small`` made, from its one file's bytes."""
    if meta.get("materializer") == _JSON.name:
        return json.loads(data.decode("utf-8"), object_hook=_decode_marked)
    return bytearray(data) if meta.get("bytearray") else data


SMALL = ("json", "bytes")  # materializers whose one file decode_small reads


def save_output(value: Any, folder: Path) -> dict[str, Any]:
    """Write ``value`` into ``folder``; return its meta: materializer name, type and more."""
    folder.mkdir(parents=True, exist_ok=True)
    materializer = materializer_for(value)
    if materializer is _PICKLE:
        extra = _save_pickled(value, folder, "no materializer takes it")
    elif materializer in _BUILTINS:
        before = set(folder.iterdir())
        try:
            extra = materializer.save(value, folder)
        except Exception as exc:
            for path in set(folder.iterdir()) - before:
                path.unlink()
            reason = f"it could not be stored as {materializer.name} ({type(exc).__name__}: {exc})"
            materializer = _PICKLE
            extra = _save_pickled(value, folder, reason)
    else:
        extra = materializer.save(value, folder)
    _check_meta(materializer, extra)
    return {**extra, "materializer": materializer.name, "type": _qualname(type(value))}


def _save_pickled(value: Any, folder: Path, reason: str) -> dict[str, Any]:
    type_ = type(value)
    try:
        meta = _PICKLE.save(value, folder)
    except Exception as exc:
        raise InvalidInput(
            f"a {_qualname(type_)} cannot be stored: {reason}, and cloudpickle fails "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    warnings.warn(
        f"a {_qualname(type_)} was stored with cloudpickle because {reason}; loading it needs "
        "compatible library versions and runs code from the file. Register a materializer for "
        "it: shipyard.pipelines.materializers.register_materializer"
        f"({type_.__qualname__}, YourMaterializer())",
        PickleWarning,
        stacklevel=3,
    )
    return meta


def _check_meta(materializer: Materializer, meta: dict[str, Any]) -> None:
    reserved = [key for key in _RESERVED if key in meta]
    if reserved:
        raise InvalidInput(
            f"materializer {materializer.name!r} returned meta with reserved keys {reserved}"
        )
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"materializer {materializer.name!r} returned meta that is not JSON: {exc}"
        ) from exc


def load_output(folder: Path, meta: dict[str, Any]) -> Any:
    """Read back a value ``save_output`` wrote into ``folder`` with this ``meta``."""
    name = meta.get("materializer")
    for materializer in [*_REGISTERED.values(), *_BUILTINS]:
        if materializer.name == name:
            return materializer.load(folder, meta)
    known = sorted({m.name for m in [*_REGISTERED.values(), *_BUILTINS]})
    raise InvalidInput(
        f"unknown materializer {name!r} for a stored {meta.get('type', 'value')}; "
        f"registered here: {', '.join(known)}. If it is your own, register it before loading"
    )


def check_picklable(value: Any, step: str) -> None:
    """Raise InvalidInput if ``value`` cannot be sent to another process (cloudpickle)."""
    cloudpickle: Any = require("cloudpickle", "models")
    try:
        cloudpickle.dumps(value)
    except Exception as exc:
        raise InvalidInput(
            f"step {step!r}: a {_qualname(type(value))} cannot be pickled to pass between "
            f"processes ({type(exc).__name__}: {exc}); return a picklable value or run the "
            "pipeline with executor='inline'"
        ) from exc


__all__ = [
    "Materializer",
    "PickleWarning",
    "check_picklable",
    "load_output",
    "materializer_for",
    "register_materializer",
    "save_output",
]
