"""Run-filter ASTs (``shipyard.store.filter``) compiled to SQLAlchemy Core over ``runs``.

Every key and value reaches the database as a bound parameter. Metrics, params and tags are
tested with correlated EXISTS subqueries, so a run lacking a key matches no comparison on it,
and ``NOT`` is always the exact complement of what it wraps. LIKE is case-sensitive on every
backend (GLOB on SQLite); ILIKE is not. Both take ``\\`` as their escape character.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from shipyard.errors import InvalidInput
from shipyard.store.filter import ATTRIBUTES, And, Compare, Node, Not, Or, OrderKey, Scalar
from shipyard.store.sql import schema

_Test = Callable[[Any, Any], sa.ColumnElement[bool]]
_COMPARE: dict[str, _Test] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compile_filter(node: Node, runs_table: sa.FromClause = schema.runs) -> sa.ColumnElement[bool]:
    """The WHERE clause keeping the rows of ``runs_table`` that match ``node``."""
    try:
        return _compile(node, runs_table)
    except sa.exc.ArgumentError as exc:  # only a hand-built AST can carry such values
        raise InvalidInput(f"cannot compile filter node: {exc}") from None


def compile_order_by(
    keys: Sequence[OrderKey], runs_table: sa.FromClause = schema.runs
) -> list[sa.ColumnElement[Any]]:
    """ORDER BY clauses for ``keys``, missing values last, then a stable tie-break."""
    clauses: list[sa.ColumnElement[Any]] = []
    for key in keys:
        for value in _sort_values(key, runs_table):
            ordered = sa.desc(value) if key.descending else sa.asc(value)
            clauses.append(sa.nulls_last(ordered))
    # Without a total order, OFFSET pagination could skip or repeat runs with equal keys.
    clauses += [runs_table.c.start_time.desc(), runs_table.c.id.asc()]
    return clauses


def ordered_segments(
    where: sa.ColumnElement[bool], keys: Sequence[OrderKey]
) -> list[sa.Select[Any]]:
    """Queries over ``runs`` whose results, one after the other, are the ordered result.

    Sorting by a metric is the common case (the best runs by accuracy), so it gets two
    segments: the runs that have a value, read in order from the (key, value) index of
    latest_metrics so that LIMIT stops early, then the runs without one. A single query
    with "NULLS LAST" would have to compute and sort the key for every matching run.
    """
    runs = schema.runs
    if not keys or keys[0].kind != "metric":
        return [sa.select(runs).where(where).order_by(*compile_order_by(keys))]
    first, rest = keys[0], keys[1:]
    lm = schema.latest_metrics
    value = lm.c.value.desc() if first.descending else lm.c.value.asc()
    having = (
        sa.select(runs)
        .select_from(lm.join(runs, runs.c.id == lm.c.run))
        .where(lm.c.key == first.key, lm.c.value.is_not(None), where)
        .order_by(value, *compile_order_by(rest))
    )
    has_value = _exists(lm, runs, lm.c.key == first.key, lm.c.value.is_not(None))
    lacking = sa.select(runs).where(where, sa.not_(has_value)).order_by(*compile_order_by(rest))
    return [having, lacking]


def _compile(node: Node, runs: sa.FromClause) -> sa.ColumnElement[bool]:
    if isinstance(node, Compare):
        if node.op not in _TESTS:
            raise InvalidInput(f"unknown filter operator {node.op!r}")
        compiler = _KINDS.get(node.kind)
        if compiler is None:
            raise InvalidInput(f"unknown filter kind {node.kind!r}")
        return compiler(node, runs)
    # true()/false() give an empty And/Or its meaning (all/none) instead of SQLAlchemy's
    # deprecation warning; SQLAlchemy drops them as soon as there is a real clause.
    if isinstance(node, And):
        return sa.and_(sa.true(), *(_compile(item, runs) for item in node.items))
    if isinstance(node, Or):
        return sa.or_(sa.false(), *(_compile(item, runs) for item in node.items))
    if isinstance(node, Not):
        return sa.not_(_compile(node.item, runs))
    raise InvalidInput(f"not a filter node: {node!r}")


def _exists(table: sa.Table, runs: sa.FromClause, *where: sa.ColumnElement[bool]) -> sa.Exists:
    """EXISTS a row of ``table`` for the outer run satisfying ``where``."""
    query = sa.select(table.c.run).where(table.c.run == runs.c.id, *where)
    return query.correlate(runs).exists()


def _metric(node: Compare, runs: sa.FromClause) -> sa.ColumnElement[bool]:
    lm = schema.latest_metrics
    if node.value is not None and not _is_numeric(node.value):
        raise InvalidInput(f"metrics compare with numbers, not {node.value!r}")
    # A NaN latest value is stored as NULL, so it counts as "no value" everywhere below.
    has_value = [lm.c.key == node.key, lm.c.value.is_not(None)]
    if node.op == "IS NULL":
        return sa.not_(_exists(lm, runs, *has_value))
    if node.op == "IS NOT NULL":
        return _exists(lm, runs, *has_value)
    test = _test(lm.c.value, node.op, _as_float(node.value))
    return _exists(lm, runs, lm.c.key == node.key, test)


def _param(node: Compare, runs: sa.FromClause) -> sa.ColumnElement[bool]:
    p = schema.params
    if node.op in ("IS NULL", "IS NOT NULL"):
        found = _exists(p, runs, p.c.key == node.key)
        return sa.not_(found) if node.op == "IS NULL" else found
    if not _is_numeric(node.value):
        return _exists(p, runs, p.c.key == node.key, _test(p.c.value, node.op, node.value))
    # value_num is NULL for text like "adam", which is unequal to any number, yet has no order.
    test = _test(p.c.value_num, node.op, _as_float(node.value))
    if node.op in ("!=", "NOT IN"):
        test = sa.or_(p.c.value_num.is_(None), test)
    return _exists(p, runs, p.c.key == node.key, test)


def _tag(node: Compare, runs: sa.FromClause) -> sa.ColumnElement[bool]:
    t = schema.tags
    if node.op in ("IS NULL", "IS NOT NULL"):
        found = _exists(t, runs, t.c.key == node.key)
        return sa.not_(found) if node.op == "IS NULL" else found
    return _exists(t, runs, t.c.key == node.key, _test(t.c.value, node.op, node.value))


_NULLABLE = frozenset({"end_time", "parent_id", "duration"})


def _attribute(node: Compare, runs: sa.FromClause) -> sa.ColumnElement[bool]:
    column = _attribute_column(node.key, runs)
    if node.op == "IS NULL":
        return column.is_(None)
    if node.op == "IS NOT NULL":
        return column.is_not(None)
    test = _test(column, node.op, node.value)
    # NULL op x is unknown, and NOT unknown is unknown too; spelling out "has a value" keeps
    # NOT (end_time > x) matching unfinished runs, as NOT does for metrics and params.
    return sa.and_(column.is_not(None), test) if node.key in _NULLABLE else test


def _attribute_column(name: str, runs: sa.FromClause) -> sa.ColumnElement[Any]:
    if name == "duration":
        return runs.c.end_time - runs.c.start_time
    if name not in ATTRIBUTES:  # runs has internal columns (id, error) too; keep them hidden
        raise InvalidInput(f"unknown run attribute {name!r}")
    return runs.c[name]


_KINDS: dict[str, Callable[[Compare, sa.FromClause], sa.ColumnElement[bool]]] = {
    "metric": _metric,
    "param": _param,
    "tag": _tag,
    "attribute": _attribute,
}


def _is_numeric(value: object) -> bool:
    first = value[0] if isinstance(value, tuple) and value else value
    return isinstance(first, (int, float)) and not isinstance(first, bool)


def _as_float(value: Any) -> Any:
    """Numbers as floats: an int would be bound as INTEGER, which huge literals overflow."""
    if isinstance(value, tuple):
        return tuple(_as_float(item) for item in value)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _test(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    """``column op value`` with the value bound as a parameter."""
    return _TESTS[op](column, value)


def _values(value: Any) -> list[Scalar]:
    if not isinstance(value, (tuple, list)) or not value:
        raise InvalidInput(f"IN needs a non-empty tuple of values, got {value!r}")
    return list(value)


_TESTS: dict[str, _Test] = {
    **_COMPARE,
    "IN": lambda column, value: column.in_(_values(value)),
    "NOT IN": lambda column, value: column.not_in(_values(value)),
    "LIKE": lambda column, value: _CaseSensitiveLike(column, value, _like_to_glob(value)),
    "NOT LIKE": lambda column, value: sa.not_(
        _CaseSensitiveLike(column, value, _like_to_glob(value))
    ),
    "ILIKE": lambda column, value: column.ilike(value, escape="\\"),
    "NOT ILIKE": lambda column, value: sa.not_(column.ilike(value, escape="\\")),
    "IS NULL": lambda column, value: column.is_(None),
    "IS NOT NULL": lambda column, value: column.is_not(None),
}


def _like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching exactly what LIKE ``pattern`` ESCAPE '\\' matches."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
            out.append(f"[{char}]" if char in "*?[" else char)
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append({"%": "*", "_": "?"}.get(char, char))
    return "".join(out)


class _CaseSensitiveLike(FunctionElement[bool]):
    """``column LIKE pattern ESCAPE '\\'``, case-sensitive everywhere.

    SQLite's LIKE ignores ASCII case (PostgreSQL's does not), so SQLite gets GLOB with the
    equivalent pattern, bound as a second parameter.
    """

    type = sa.Boolean()
    name = "shipyard_like"
    inherit_cache = True


@compiles(_CaseSensitiveLike)
def _like_default(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern, _ = element.clauses
    like = column.like(pattern, escape="\\")
    return f"({compiler.process(like, **kw)})"


@compiles(_CaseSensitiveLike, "sqlite")
def _like_sqlite(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, glob = element.clauses
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)})"


def _sort_values(key: OrderKey, runs: sa.FromClause) -> list[sa.ColumnElement[Any]]:
    """What to sort by for one key: a run column or correlated per-run subqueries."""
    if key.kind == "attribute":
        return [_attribute_column(key.key, runs)]
    table = {"metric": schema.latest_metrics, "param": schema.params, "tag": schema.tags}.get(
        key.kind
    )
    if table is None:
        raise InvalidInput(f"unknown order_by kind {key.kind!r}")
    # Numeric params sort as numbers, then the text ones by text, then runs without it.
    columns = ["value_num", "value"] if key.kind == "param" else ["value"]
    return [
        sa.select(table.c[name])
        .where(table.c.run == runs.c.id, table.c.key == key.key)
        .correlate(runs)
        .scalar_subquery()
        for name in columns
    ]


__all__ = ["compile_filter", "compile_order_by", "ordered_segments"]
