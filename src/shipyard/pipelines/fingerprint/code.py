"""Code fingerprints: a step's function and the project code it uses, transitively.

- A function counts by the AST of its source (``ast.dump``, so comments, blank lines and
  formatting do not; docstrings, decorators and their arguments do) plus its bytecode and
  constants (so code edited on disk but not yet re-imported never looks like the running code).
  No source (a REPL, C): bytecode only; lambdas always hash bytecode, as their source is a whole
  line. A class counts by its source and the bytecode of its methods.
- Followed, transitively: project functions and classes (with their project base classes) and
  module constants (None, bool, numbers, str, bytes, enums, dataclasses and containers of them, up
  to 10,000 items) reached through globals, ``module.attr`` chains, imports inside the function,
  closure cells and default values. Instances count by their class's code, not their state.
- Project code: see ``scope.py``.
- Module names and paths are not hashed: moving the project keeps its keys.

Limits (each can make a changed step a cache hit): dynamic lookups (``getattr(mod, name)``,
registries, ``eval``), class attributes computed from functions at import time, and the state
of module-level objects other than the constants above are not followed.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib
import importlib.util
import inspect
import sys
import textwrap
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint.files import _stat_signature
from shipyard.pipelines.fingerprint.scope import _defining_file, _Scope
from shipyard.pipelines.fingerprint.values import (
    _SCALARS,
    _fingerprint,
    _is_plain,
    _name,
    _sha256,
)

_MISSING: Any = object()


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


# Registered here rather than in values.py: a function's digest needs the code walker.
@_fingerprint.register(types.FunctionType)
@_fingerprint.register(type)
def _(value: Callable[..., Any]) -> str:
    if _Scope.is_installed(value):  # its version is in the environment digest
        return _sha256("callable", _name(value))
    return _sha256("code", code_fingerprint(value)[0])


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
