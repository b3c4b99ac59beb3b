"""Fingerprints for a step's cache key: its code, the files it reads and its values.

``cache_key`` combines a step's code (``code_fingerprint``), parameter and input values
(``value_fingerprint``), declared files (``files_fingerprint``) and the environment digest.

Code, what counts:

- A function counts by the AST of its source (``ast.dump``, so comments, blank lines and
  formatting do not; docstrings, decorators and their arguments do) plus its bytecode and
  constants (so code edited on disk but not yet re-imported never looks like the running code).
  No source (a REPL, C): bytecode only; lambdas always hash bytecode, as their source is a whole
  line. A class counts by its source and the bytecode of its methods.
- Followed, transitively: project functions and classes (with their project base classes) and
  module constants (None, bool, numbers, str, bytes, enums, dataclasses and containers of them, up
  to 10,000 items) reached through globals, ``module.attr`` chains, imports inside the function,
  closure cells and default values. Instances count by their class's code, not their state.
- Project code: files under the project root (the nearest folder up from the step's file holding
  pyproject.toml, setup.py or .git) and outside the standard library, site-packages and the
  virtual environment; functions typed into a REPL count when the step has no file. Shipyard's own
  code never counts: its version is in the environment digest, like every installed package.
- Module names and paths are not hashed: moving the project keeps its keys.

Limits (each can make a changed step a cache hit): dynamic lookups (``getattr(mod, name)``,
registries, ``eval``), class attributes computed from functions at import time, and the state
of module-level objects other than the constants above are not followed.
"""

from __future__ import annotations

import ast
import dataclasses
import dis
import enum
import functools
import glob
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import pickle
import site
import sys
import sysconfig
import textwrap
import threading
import time
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from shipyard.errors import InvalidInput

__all__ = [
    "cache_key",
    "code_fingerprint",
    "code_parts",
    "files_fingerprint",
    "register_fingerprint",
    "value_fingerprint",
]

KEY_VERSION = 1  # bump when what a key covers changes, so old entries miss instead of lying
MAX_CONSTANT_ITEMS = 10_000
_RACY_NS = 2_000_000_000  # a file changed this recently may change again within one mtime tick
_MAX_STAT_CACHE = 100_000
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", ".git")
_MISSING: Any = object()
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


# --- cache key -------------------------------------------------------------------------------


def cache_key(
    *,
    code: str,
    params: Mapping[str, str],
    inputs: Mapping[str, str],
    files: str | None,
    environment: str | None,
) -> str:
    """sha256 over a canonical JSON of a step's fingerprints (None: no files / env opted out)."""
    for kind, parts in (("params", params), ("inputs", inputs)):
        bad = [name for name, digest in parts.items() if not isinstance(digest, str)]
        if bad:
            raise InvalidInput(f"cache_key takes fingerprints (str) for {kind}; not for {bad}")
    doc = {
        "version": KEY_VERSION,
        "code": code,
        "params": dict(params),
        "inputs": dict(inputs),
        "files": files,
        "environment": environment,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --- files -----------------------------------------------------------------------------------

_stat_cache: dict[tuple[Any, ...], str] = {}
_stat_lock = threading.Lock()


def files_fingerprint(patterns: Sequence[str], root: Path | str) -> tuple[str, dict[str, str]]:
    """Digest of the files matching glob ``patterns`` under ``root``, and {relpath: sha256}.

    Patterns are relative to ``root``; ``**`` recurses; as in a shell, ``*`` skips dot files; a
    pattern naming a folder takes every file under it. A pattern matching no file is an error.
    """
    if isinstance(patterns, (str, bytes)):
        raise InvalidInput(f"file patterns must be a list of globs, not one string: {patterns!r}")
    base = Path(root)
    files: dict[str, str] = {}
    for pattern in patterns:
        if not pattern or os.path.isabs(pattern):
            raise InvalidInput(f"file pattern {pattern!r} must be a path relative to {base}")
        matched = _matching_files(pattern, base)
        if not matched:
            raise InvalidInput(f"file pattern {pattern!r} matches no file under {base}")
        for rel in matched:
            files[rel] = _file_sha256(base / rel)
    listing = sorted(files.items())
    return _sha256(json.dumps(listing, separators=(",", ":"))), dict(listing)


def _matching_files(pattern: str, base: Path) -> set[str]:
    found: set[str] = set()
    for match in glob.glob(pattern, root_dir=base, recursive=True):
        found.add(match)
        if (base / match).is_dir():  # a folder: every file under it
            inner = os.path.join(glob.escape(match), "**", "*")
            found.update(glob.glob(inner, root_dir=base, recursive=True))
    return {Path(os.path.normpath(m)).as_posix() for m in found if (base / m).is_file()}


def _stat_signature(path: str | os.PathLike[str]) -> tuple[Any, ...] | None:
    """What identifies a file's content cheaply; None when too fresh to trust (racy)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _RACY_NS:
        return None
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _file_sha256(path: Path) -> str:
    key = _stat_signature(path.resolve())
    cached = _stat_cache.get(key) if key is not None else None
    if cached is not None:
        return cached
    digest = _hash_file(path)
    if key is not None and _stat_signature(path.resolve()) == key:  # unchanged while hashed
        with _stat_lock:
            if len(_stat_cache) >= _MAX_STAT_CACHE:
                _stat_cache.clear()
            _stat_cache[key] = digest
    return digest


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- values ----------------------------------------------------------------------------------


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


@_fingerprint.register(types.FunctionType)
@_fingerprint.register(type)
def _(value: Callable[..., Any]) -> str:
    if _Scope.is_installed(value):  # its version is in the environment digest
        return _sha256("callable", _name(value))
    return _sha256("code", code_fingerprint(value)[0])


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


# --- code ------------------------------------------------------------------------------------


def code_fingerprint(fn: Callable[..., Any]) -> tuple[str, list[str]]:
    """sha256 over the normalized source of ``fn`` and the project code it uses, transitively.

    Returns the digest and the sorted qualified names of the functions, classes and constants
    included (for explaining a miss; ``code_parts`` also gives each one's digest).
    """
    parts = code_parts(fn)
    return _sha256("code", *sorted(parts.values())), sorted(parts)


def code_parts(fn: Callable[..., Any]) -> dict[str, str]:
    """{qualified name: digest} of everything ``code_fingerprint`` hashes for ``fn``."""
    return _CodeWalker(fn).walk()


def _innermost(fn: Any) -> Any:
    """The function or class a step object, partial, method or decorator wraps."""
    for _ in range(100):
        if isinstance(fn, (functools.partial, functools.partialmethod)):
            fn = fn.func
        elif isinstance(fn, (types.MethodType, staticmethod, classmethod)):
            fn = fn.__func__
        elif isinstance(fn, (types.FunctionType, type)):
            return inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
        elif _wrapped(fn) is not None:
            fn = _wrapped(fn)
        elif callable(fn):
            return type(fn)
        else:
            break
    raise InvalidInput(f"cannot fingerprint the code of {fn!r}: not a function or class")


def _wrapped(obj: Any) -> Any:
    if isinstance(obj, types.FunctionType):
        return obj.__dict__.get("__wrapped__")
    try:
        return inspect.getattr_static(obj, "__wrapped__", None)
    except Exception:  # exotic __getattr__/descriptors: treat as not wrapping anything
        return None


def _defining_file(obj: Any) -> str | None:
    if isinstance(obj, types.FunctionType):
        return obj.__code__.co_filename
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    return getattr(module, "__file__", None)


@functools.lru_cache(maxsize=256)
def _project_root(start: str) -> str:
    folder = start
    while True:
        if any(os.path.exists(os.path.join(folder, m)) for m in _PROJECT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(getattr(site, "getsitepackages", list)())
    dirs.add(site.getusersitepackages())
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # shipyard itself
    return tuple(sorted(_realpath(d) for d in dirs if d))


_realpath = functools.lru_cache(maxsize=4096)(os.path.realpath)


class _Scope:
    """Which files hold the user's project code, as seen from one step."""

    def __init__(self, target: Any) -> None:
        filename = _defining_file(target) or ""
        self.interactive = not os.path.isfile(filename)
        start = os.getcwd() if self.interactive else os.path.dirname(os.path.abspath(filename))
        root = _realpath(_project_root(start))
        self.root = root
        # A virtual environment inside the project is not project code; a prefix holding the
        # project (/usr for /usr/src/app) must not exclude it, so prefixes count only then.
        prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
        extra = (_realpath(p) for p in prefixes if p)
        self.excluded = _library_dirs() + tuple(p for p in extra if not _under(root, p))

    @staticmethod
    def is_installed(obj: Any) -> bool:
        filename = _defining_file(inspect.unwrap(obj) if callable(obj) else obj)
        if not filename or not os.path.isfile(filename):
            return getattr(obj, "__module__", None) not in ("__main__", "__mp_main__")
        path = _realpath(filename)
        return _installed_path(path) or any(_under(path, d) for d in _library_dirs())

    def owns_file(self, filename: str | None, module: str | None) -> bool:
        known = _file_in_project(filename or "", self.root, self.excluded)
        if known is None:  # no file: code typed into a REPL or notebook
            return self.interactive and module in ("__main__", "__mp_main__")
        return known

    def owns(self, obj: Any) -> bool:
        if isinstance(obj, types.ModuleType):
            file = getattr(obj, "__file__", None)
            if file:
                return self.owns_file(file, None)
            return any(self.owns_file(p, None) for p in getattr(obj, "__path__", []))  # namespace
        return self.owns_file(_defining_file(obj), getattr(obj, "__module__", None))


@functools.lru_cache(maxsize=4096)
def _file_in_project(filename: str, root: str, excluded: tuple[str, ...]) -> bool | None:
    """Whether a file (or a namespace package's folder) is project code; None: no such file."""
    if not filename or not os.path.exists(filename):
        return None
    path = _realpath(filename)
    if not _under(path, root) or _installed_path(path):
        return False
    return not any(_under(path, d) for d in excluded)


def _installed_path(path: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)


_instructions_memo: weakref.WeakKeyDictionary[types.CodeType, list[tuple[str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_bytecode_memo: weakref.WeakKeyDictionary[types.CodeType, str] = weakref.WeakKeyDictionary()
_source_memo: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], str]] = (
    weakref.WeakKeyDictionary()
)


def _instructions(code: types.CodeType) -> list[tuple[str, Any]]:
    """(kind, argument) of the instructions that matter for references, across versions."""
    found = _instructions_memo.get(code)
    if found is None:
        found = []
        for ins in dis.get_instructions(code):
            kind = _OP_KINDS.get(ins.opname) or _op_kind(ins.opname)
            if kind != "other" or not found or found[-1][0] != "other":
                found.append((kind, ins.argval))
        _instructions_memo[code] = found
    return found


_OP_KINDS = {
    "LOAD_GLOBAL": "global",
    "LOAD_NAME": "global",
    "LOAD_FROM_DICT_OR_GLOBALS": "global",
    "LOAD_ATTR": "attr",
    "LOAD_METHOD": "attr",
    "IMPORT_NAME": "import",
    "IMPORT_FROM": "from",
    "LOAD_CONST": "const",
    "LOAD_SMALL_INT": "const",
}


def _op_kind(opname: str) -> str:
    if opname.startswith(("LOAD_FAST", "LOAD_DEREF")):  # LOAD_FAST_LOAD_FAST, _BORROW, ...
        return "local"
    return "store" if opname.startswith("STORE_") else "other"


def _nested_code(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested_code(const)


def _bytecode_digest(code: types.CodeType) -> str:
    found = _bytecode_memo.get(code)
    if found is None:
        consts = [
            _bytecode_digest(c) if isinstance(c, types.CodeType) else _fingerprint(c)
            for c in code.co_consts
        ]
        found = _sha256("bytecode", code.co_code, *code.co_names, "|", *consts)
        _bytecode_memo[code] = found
    return found


def _source_digest(obj: Any, key_object: Any) -> str:
    """Digest of the AST of ``obj``'s source ('' without source); memoized per file state."""
    filename = _defining_file(obj)
    signature = _stat_signature(filename) if filename else None
    memo = _source_memo.get(key_object)
    if memo is not None and signature is not None and memo[0] == signature:
        return memo[1]
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):  # no source: REPL, C, exec'd code
        return ""
    digest = _sha256("ast", ast.dump(tree))
    if signature is not None:
        _source_memo[key_object] = (signature, digest)
    return digest


class _CodeWalker:
    """Collects the parts of one step's code fingerprint, breadth-first, each object once."""

    def __init__(self, fn: Any) -> None:
        self.root = _innermost(fn)
        self.scope = _Scope(self.root)
        self.parts: dict[str, str] = {}
        self._seen: dict[int, Any] = {}  # id -> object, kept alive so ids stay unique
        self._queue: list[Any] = [fn, self.root]

    def walk(self) -> dict[str, str]:
        while self._queue:
            obj = self._queue.pop()
            if id(obj) not in self._seen:
                self._seen[id(obj)] = obj
                self._visit(obj)
        return self.parts

    def _add(self, name: str, digest: str) -> None:
        unique, n = name, 1
        while unique in self.parts:
            n += 1
            unique = f"{name}#{n}"
        self.parts[unique] = digest

    def _visit(self, obj: Any) -> None:
        if isinstance(obj, (functools.partial, functools.partialmethod)):
            self._queue.append(obj.func)
        elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            self._queue.append(obj.__func__)
        elif isinstance(obj, types.FunctionType):
            if _wrapped(obj) is not None:
                self._queue.append(_wrapped(obj))
            if obj is self.root or self.scope.owns(obj):
                self._add(_name(obj), self._function_digest(obj))
        elif isinstance(obj, type):
            if obj is self.root or self.scope.owns(obj):
                self._add_class(obj)
        elif _wrapped(obj) is not None:
            self._queue.append(_wrapped(obj))
        elif not isinstance(obj, (types.ModuleType, types.BuiltinFunctionType)):
            self._queue.append(type(obj))  # an instance runs its class's code

    def _function_digest(self, fn: types.FunctionType) -> str:
        lambda_ = fn.__code__.co_name == "<lambda>"  # its "source" is the whole line around it
        source = "" if lambda_ else _source_digest(fn, fn.__code__)
        extra = self._follow_function(fn)
        qualname = getattr(fn.__code__, "co_qualname", fn.__qualname__)  # no module: see top
        return _sha256("function", qualname, source, _bytecode_digest(fn.__code__), *extra)

    def _follow_function(self, fn: types.FunctionType) -> list[str]:
        """Queue what ``fn`` uses; return tokens of the plain values it closes over or defaults."""
        tokens: list[str] = []
        cells: dict[str, Any] = {}
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                cells[var] = cell.cell_contents
            except ValueError:  # an empty cell: not bound yet
                continue
        defaults = [(f"default{i}", v) for i, v in enumerate(fn.__defaults__ or ())]
        for label, value in [*cells.items(), *defaults, *(fn.__kwdefaults__ or {}).items()]:
            if _is_plain(value):
                tokens.append(f"{label}={_fingerprint(value)}")
            if type(value) not in _SCALARS:
                self._queue.append(value)
        self._follow_code(fn.__code__, fn.__globals__, cells)
        return tokens

    def _add_class(self, cls: type) -> None:
        self._queue.extend(cls.__bases__)
        bytecodes = []
        filename = _defining_file(cls)
        for member in vars(cls).values():
            for fn in _member_functions(member):
                inline = fn.__code__.co_filename == filename and _wrapped(fn) is None
                if inline and fn.__qualname__.startswith(cls.__qualname__ + "."):
                    bytecodes.append(_bytecode_digest(fn.__code__))
                    bytecodes.extend(self._follow_function(fn))
                else:
                    self._queue.append(fn)
            if isinstance(member, type):
                self._queue.append(member)
        source = _source_digest(cls, cls)
        self._add(_name(cls), _sha256("class", cls.__qualname__, source, *sorted(bytecodes)))

    def _reference(self, label: str, obj: Any) -> None:
        if obj is _MISSING or isinstance(obj, types.ModuleType):
            return
        if _is_plain(obj):
            short = label.rpartition(".")[2]
            self._add(label, _sha256("constant", short, _fingerprint(obj)))
            if type(obj) in _SCALARS:
                return
        self._queue.append(obj)

    def _follow_code(
        self, code: types.CodeType, globals_: dict[str, Any], cells: dict[str, Any]
    ) -> None:
        module = globals_.get("__name__", "?")
        module = "__main__" if module == "__mp_main__" else module
        bound: dict[str, Any] = {}  # local names bound by `import` inside the function
        for co in _nested_code(code):
            chain: list[Any] | None = None  # [object, label, still extendable]
            consts: list[Any] = [None, None]
            imported: Any = _MISSING
            pending: Any = _MISSING
            for op, arg in _instructions(co):
                if chain is not None and op == "attr" and chain[2]:
                    chain[:] = self._attribute(chain[0], chain[1], arg)
                    continue
                if chain is not None:
                    self._reference(chain[1], chain[0])
                    chain = None
                if op == "global":
                    if arg in globals_:
                        chain = [globals_[arg], f"{module}.{arg}", True]
                elif op == "local":
                    var = arg[-1] if isinstance(arg, tuple) else arg
                    # Other closure values were taken by _follow_function already.
                    value = bound.get(var, _MISSING)
                    if value is _MISSING and isinstance(cells.get(var), types.ModuleType):
                        value = cells[var]
                    if value is not _MISSING:
                        chain = [value, f"{module}.{var}", True]
                elif op == "import":
                    imported = self._import(arg, consts[-2], consts[-1], globals_)
                    pending = imported
                elif op == "from":
                    pending = self._attribute(imported, f"{module}.{arg}", arg)[0]
                    owner = getattr(imported, "__name__", "?")
                    self._reference(f"{owner}.{arg}", pending)
                elif op == "store" and pending is not _MISSING:
                    bound[arg] = pending
                    pending = _MISSING
                elif op == "const":
                    consts.append(arg)
            if chain is not None:
                self._reference(chain[1], chain[0])

    def _attribute(self, obj: Any, label: str, attr: str) -> list[Any]:
        """Step into ``obj.attr`` when obj is a project module; otherwise the chain ends here."""
        if not isinstance(obj, types.ModuleType) or not self.scope.owns(obj):
            return [obj, label, False]
        try:
            value = getattr(obj, attr, _MISSING)
            if value is _MISSING:  # a submodule not imported yet
                value = importlib.import_module(f"{obj.__name__}.{attr}")
        except Exception:  # module __getattr__ or import may raise anything; the step would too
            return [obj, label, False]
        return [value, f"{obj.__name__}.{attr}", True]

    def _import(self, name: str, level: Any, fromlist: Any, globals_: dict[str, Any]) -> Any:
        """The module an ``import`` inside the function binds, imported only if project code."""
        try:
            package = globals_.get("__package__") or ""
            absolute = importlib.util.resolve_name("." * (level or 0) + name, package)
        except (ImportError, ValueError):
            return _MISSING
        top = absolute.partition(".")[0]
        loaded = sys.modules.get(top)
        if loaded is not None:
            if not self.scope.owns(loaded):
                return _MISSING
        else:
            try:
                spec = importlib.util.find_spec(top)  # a top-level name: imports nothing
            except (ImportError, ValueError):
                return _MISSING
            places: list[str] = [spec.origin] if spec and spec.origin else []
            places += list(spec.submodule_search_locations or []) if spec else []
            if not any(self.scope.owns_file(p, None) for p in places):
                return _MISSING
        try:
            module = importlib.import_module(absolute)
        except Exception:  # the step itself will raise when it runs; nothing to follow here
            return _MISSING
        return module if fromlist else sys.modules.get(top, _MISSING)


def _member_functions(member: Any) -> list[types.FunctionType]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, functools.cached_property):
        member = member.func
    found = [member.fget, member.fset, member.fdel] if isinstance(member, property) else [member]
    return [f for f in found if isinstance(f, types.FunctionType)]
