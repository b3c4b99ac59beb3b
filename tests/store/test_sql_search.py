"""Compiled filters and orderings run against a real database (SQLite; PostgreSQL if set)."""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.errors import InvalidInput
from shipyard.store.filter import OPERATORS, And, Compare, Or, parse_filter, parse_order_by
from shipyard.store.sql import schema
from shipyard.store.sql import search as search_module
from shipyard.store.sql.search import compile_filter, compile_order_by
from shipyard.store.validation import numeric_or_none

POSTGRES_ENV = "SHIPYARD_TEST_POSTGRES_URL"
ALL = "abcdef"


def rid(label: str) -> str:
    return label * 32


# label: name, status, start, end, user, parent, lifecycle, experiment
RUNS = {
    "a": ("alpha", "finished", 1000.0, 1100.0, "ann", None, "active", 1),
    "b": ("Beta", "failed", 2000.0, 2050.0, "bob", rid("a"), "active", 1),
    "c": ("gamma_1", "running", 3000.0, None, "ann", rid("a"), "active", 1),
    "d": ("delta%x", "killed", 4000.0, 4400.0, "", None, "deleted", 2),
    "e": ("ALPHA*[2]", "finished", 5000.0, 5010.0, "bob", None, "active", 2),
    "f": ("gamma-1", "finished", 1704067200.0, 1704067260.0, "ann", None, "active", 1),
}
PARAMS = {
    "a": {"lr": "0.1", "layers": "100", "opt": "adam", "learning-rate": "1e-3", "n": "5"},
    "b": {"lr": "0.01", "layers": "100.0", "opt": "sgd", "n": "50"},
    "c": {"lr": "abc", "layers": "50", "opt": "Adam"},
    "d": {"opt": "adam_w"},
    "f": {"layers": "1e2", "n": "-5"},
}
TAGS = {
    "a": {"team": "vision", "val/x": "1", "note": "it's"},
    "b": {"team": "nlp", "note": "a'; DROP TABLE runs; --"},
    "c": {"team": "Vision"},
    "d": {"team": "vision"},
    "f": {"team": "speech", "with space": "yes"},
}
METRICS = {
    "a": {"acc": 0.9, "loss": 0.2, "val/loss": 0.3},
    "b": {"acc": 0.7, "loss": math.nan},
    "c": {"acc": 0.8, "val/loss": 0.5},
    "d": {"acc": 0.95, "loss": 0.1},
    "f": {"acc": 0.7, "loss": 0.4},
}


def fill(conn: sa.Connection) -> None:
    conn.execute(
        schema.experiments.insert(),
        [{"id": 1, "name": "one", "created_at": 0.0}, {"id": 2, "name": "two", "created_at": 0.0}],
    )
    pks = {}
    for pk, (label, row) in enumerate(RUNS.items(), start=1):
        name, status, start, end, user, parent, lifecycle, experiment = row
        pks[label] = pk
        conn.execute(
            schema.runs.insert().values(
                id=pk, run_id=rid(label), experiment_id=experiment, name=name, status=status,
                start_time=start, end_time=end, parent_id=parent, user=user, lifecycle=lifecycle,
            )
        )  # fmt: skip
    conn.execute(schema.params.insert(), [
        {"run": pks[r], "key": k, "value": v, "value_num": numeric_or_none(v)}
        for r, kv in PARAMS.items() for k, v in kv.items()
    ])  # fmt: skip
    conn.execute(schema.tags.insert(), [
        {"run": pks[r], "key": k, "value": v} for r, kv in TAGS.items() for k, v in kv.items()
    ])  # fmt: skip
    conn.execute(schema.latest_metrics.insert(), [
        {"run": pks[r], "key": k, "value": None if math.isnan(v) else v,
         "step": 0, "timestamp": 0.0}
        for r, kv in METRICS.items() for k, v in kv.items()
    ])  # fmt: skip


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[sa.Engine]:
    """An engine whose tables live in a fresh schema, dropped afterwards (others share the DB)."""
    name = f"t_search_{uuid.uuid4().hex[:12]}"
    base = sa.engine.make_url(url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = sa.create_engine(base.update_query_dict({"options": f"-csearch_path={name}"}))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    """A database holding the runs above, shared (read-only) by this module's tests."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("search") / "search.db"
            db = sa.create_engine(f"sqlite:///{path}")
            stack.callback(db.dispose)
        else:
            url = os.environ.get(POSTGRES_ENV)
            if not url:
                pytest.skip(f"PostgreSQL search tests need {POSTGRES_ENV} (a server URL)")
            db = stack.enter_context(postgres_schema(url))
        schema.metadata.create_all(db)
        with db.begin() as conn:
            fill(conn)
        yield db


def search(engine: sa.Engine, text: str, order_by: list[str] | None = None) -> list[str]:
    """Labels of the runs matching ``text``, in the order asked for."""
    query = sa.select(schema.runs.c.run_id)
    node = parse_filter(text)
    if node is not None:
        query = query.where(compile_filter(node))
    query = query.order_by(*compile_order_by(parse_order_by(order_by or [])))
    with engine.connect() as conn:
        return [run_id[0] for run_id in conn.execute(query).scalars()]


def matches(engine: sa.Engine, text: str) -> str:
    return "".join(sorted(search(engine, text)))


CASES = [
    # metrics, with NaN stored as NULL counting as "no value"
    ("metrics.acc > 0.8", "ad"),
    ("metrics.acc >= 0.8", "acd"),
    ("metrics.acc < 0.8", "bf"),
    ("metrics.acc <= 0.7", "bf"),
    ("metrics.acc = 0.7", "bf"),
    ("metrics.acc == 0.95", "d"),
    ("metrics.acc != 0.7", "acd"),
    ("metrics.acc <> 0.7", "acd"),
    ("metrics.acc IN (0.9, 0.8)", "ac"),
    ("metrics.acc NOT IN (0.9, 0.8)", "bdf"),
    ("metrics.acc > 1", ""),
    ("metrics.acc = 1", ""),
    ("metrics.loss IS NULL", "bce"),
    ("metrics.loss IS NOT NULL", "adf"),
    ("metrics.loss > -1", "adf"),
    ("metrics.loss != 0.2", "df"),
    ("NOT metrics.loss = 0.2", "bcdef"),
    ('metrics."val/loss" < 0.4', "a"),
    ("metrics.val/loss > 0", "ac"),
    ("metrics.missing > 0", ""),
    ("metrics.missing IS NULL", ALL),
    # params: numbers compare value_num, text compares value
    ("params.layers = 100", "abf"),
    ("params.layers = 1e2", "abf"),
    ("params.layers = '100'", "a"),
    ("params.layers > 60", "abf"),
    ("params.layers < 60", "c"),
    ("params.lr < 0.05", "b"),
    ("params.lr = 0.1", "a"),
    ("params.lr != 0.1", "bc"),
    ("params.lr != 'abc'", "ab"),
    ("params.lr > 100000000000000000000", ""),
    ("params.n IN (5, -5)", "af"),
    ("params.n NOT IN (5)", "bf"),
    ("params.opt IN ('adam', 'sgd')", "ab"),
    ("params.opt NOT IN ('adam')", "bcd"),
    ("params.`learning-rate` = 0.001", "a"),
    ("params.lr IS NULL", "def"),
    ("params.lr IS NOT NULL", "abc"),
    # LIKE is case-sensitive everywhere, ILIKE is not; '\' escapes % and _
    ("params.opt LIKE 'ad%'", "ad"),
    ("params.opt LIKE 'Ad%'", "c"),
    ("params.opt ILIKE 'ad%'", "acd"),
    ("params.opt NOT LIKE 'ad%'", "bc"),
    ("params.opt NOT ILIKE 'AD%'", "b"),
    ("params.opt LIKE 'ada_'", "a"),
    ("params.opt LIKE 'adam\\_%'", "d"),
    ("params.opt ILIKE 'ADAM\\_W'", "d"),
    ("name LIKE 'delta\\%x'", "d"),
    ("name LIKE 'delta\\%'", ""),
    ("name LIKE '%a%'", "abcdf"),
    ("name ILIKE '%a%'", ALL),
    ("name LIKE 'ALPHA*[2]'", "e"),
    ("name LIKE 'ALPHA_[2]'", "e"),
    ("name LIKE '%[2]'", "e"),
    ("name LIKE 'A*'", ""),
    ("name LIKE '%?%'", ""),
    ("name LIKE '[a]%'", ""),
    ("name LIKE 'gamma_1'", "cf"),
    ("name LIKE 'gamma\\_1'", "c"),
    # tags
    ("tags.team = 'vision'", "ad"),
    ("tags.team != 'vision'", "bcf"),
    ("tags.team LIKE 'V%'", "c"),
    ("tags.team ILIKE 'v%'", "acd"),
    ("tags.team IN ('nlp', 'speech')", "bf"),
    ("tags.team NOT IN ('nlp', 'speech')", "acd"),
    ("tags.team IS NULL", "e"),
    ("tags.team IS NOT NULL", "abcdf"),
    ("tags.\"with space\" = 'yes'", "f"),
    ("tags.`val/x` = '1'", "a"),
    ("tags.note = 'it''s'", "a"),
    ('tags.note = "it\'s"', "a"),
    # attributes
    ("name = 'alpha'", "a"),
    ("name = 'ALPHA'", ""),
    ("run_name != 'alpha'", "bcdef"),
    ("status = 'FINISHED'", "aef"),
    ("status IN ('running', 'failed')", "bc"),
    ("status NOT IN ('finished')", "bcd"),
    ("status != 'finished'", "bcd"),
    ("status LIKE 'f%'", "abef"),
    (f"run_id = '{rid('a')}'", "a"),
    (f"id IN ('{rid('a')}', '{rid('b')}')", "ab"),
    ("run_id LIKE 'c%'", "c"),
    ("user = 'ann'", "acf"),
    ("user = ''", "d"),
    ("user_id = 'bob'", "be"),
    ("lifecycle = 'deleted'", "d"),
    ("lifecycle != 'deleted'", "abcef"),
    ("experiment_id = 2", "de"),
    ("experiment_id = '1'", "abcf"),
    ("experiment_id NOT IN (2)", "abcf"),
    (f"parent_id = '{rid('a')}'", "bc"),
    (f"parent_id != '{rid('a')}'", ""),
    (f"NOT parent_id = '{rid('a')}'", "adef"),
    ("parent_id IS NULL", "adef"),
    ("parent_id IS NOT NULL", "bc"),
    ("start_time > 2500", "cdef"),
    ("start_time >= '2024-01-01'", "f"),
    ("start_time < '2024-01-01T00:00:00Z'", "abcde"),
    ("start_time = '2024-01-01T01:00:00+01:00'", "f"),
    ("end_time IS NULL", "c"),
    ("end_time < 4500", "abd"),
    ("NOT end_time < 4500", "cef"),
    ("end_time NOT IN (1100)", "bdef"),
    ("duration > 55", "adf"),
    ("duration <= 50", "be"),
    ("duration = 60", "f"),
    ("duration IS NULL", "c"),
    ("NOT duration > 55", "bce"),
    # boolean structure
    ("metrics.acc > 0.8 OR status = 'failed' AND user = 'ann'", "ad"),
    ("(metrics.acc > 0.8 OR status = 'failed') AND user = 'ann'", "a"),
    ("NOT status = 'finished' AND user = 'bob'", "b"),
    ("NOT (status = 'finished' AND user = 'bob')", "abcdf"),
    ("NOT NOT name = 'alpha'", "a"),
    ("user = 'ann' AND (status = 'running' OR metrics.acc > 0.85)", "ac"),
    ("tags.team = 'vision' AND params.opt LIKE 'adam%' AND metrics.acc > 0.9", "d"),
    ("metrics.acc > 0.9 OR metrics.acc < 0.75 OR tags.team IS NULL", "bdef"),
    ("NOT (metrics.acc > 0.9 OR metrics.acc < 0.75 OR tags.team IS NULL)", "ac"),
    ("", ALL),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_matches_exactly(engine: sa.Engine, text: str, expected: str) -> None:
    assert matches(engine, text) == expected


ORDERINGS = [
    ([], "fedcba"),  # newest first
    (["start_time"], "abcdef"),
    (["metrics.acc DESC"], "dacfbe"),  # b and f tie: newer first; e has no acc: last
    (["metrics.acc"], "fbcade"),
    (["metrics.loss"], "dafecb"),  # b's NaN sorts with the missing ones
    (["metrics.loss DESC"], "fadecb"),
    (['metrics."val/loss" desc'], "cafedb"),
    (["params.lr"], "bacfed"),  # numbers, then text ("abc"), then missing
    (["params.lr DESC"], "abcfed"),
    (["params.layers"], "cabfed"),  # 100 = 100.0 = 1e2 numerically; then by text
    (["end_time"], "abdefc"),  # unfinished last, ascending too
    (["end_time DESC"], "fedbac"),  # and descending
    (["duration DESC"], "dafbec"),
    (["status", "metrics.acc DESC"], "bafedc"),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERINGS, ids=[str(o[0]) for o in ORDERINGS])
def test_order_by(engine: sa.Engine, order_by: list[str], expected: str) -> None:
    assert "".join(search(engine, "", order_by)) == expected


def test_order_by_text_with_a_filter(engine: sa.Engine) -> None:
    # Lower-case ASCII only: PostgreSQL's collation may order case unlike SQLite.
    picked = "tags.team IN ('nlp', 'speech', 'vision')"
    assert "".join(search(engine, picked, ["tags.team DESC"])) == "dafb"
    assert "".join(search(engine, "tags.team ILIKE 'v%'", ["metrics.acc"])) == "cad"
    assert "".join(search(engine, "name IN ('alpha', 'gamma_1', 'delta%x')", ["name"])) == "adc"


def test_pages_of_a_sorted_search_cover_every_run_once(engine: sa.Engine) -> None:
    order = compile_order_by(parse_order_by(["metrics.acc"]))
    pages = []
    with engine.connect() as conn:
        for offset in range(0, 6, 2):
            query = sa.select(schema.runs.c.run_id).order_by(*order).offset(offset).limit(2)
            pages += [run_id[0] for run_id in conn.execute(query).scalars()]
    assert "".join(pages) == "fbcade"


def test_filter_on_an_aliased_runs_table(engine: sa.Engine) -> None:
    r = schema.runs.alias("r")
    node = parse_filter("metrics.acc > 0.8 AND params.opt = 'adam'")
    assert node is not None
    query = (
        sa.select(r.c.run_id)
        .where(compile_filter(node, r))
        .order_by(*compile_order_by(parse_order_by(["metrics.acc"]), r))
    )
    with engine.connect() as conn:
        assert [row[0] for row in conn.execute(query).scalars()] == ["a"]


INJECTIONS = [
    ("params.\"x' OR '1'='1\" = 'a'", ""),
    ('params."lr"" OR 1=1 --" = \'a\'', ""),
    ("tags.t = 'a''; DROP TABLE runs; --'", ""),
    ("tags.note = 'a''; DROP TABLE runs; --'", "b"),  # the stored text, matched literally
    ("name = 'x'' OR ''1''=''1'", ""),
    ("name LIKE '%'' OR 1=1 --'", ""),
    ('metrics."acc\') OR 1=1; DROP TABLE latest_metrics; --" > 0', ""),
    ("tags.`x`` OR 1=1; DROP TABLE tags; --` IS NULL", ALL),  # no run has that odd tag
    ("params.\"opt\" = 'adam'' UNION SELECT run_id FROM runs --'", ""),
]


@pytest.mark.parametrize(("text", "expected"), INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injection_attempts_are_plain_data(engine: sa.Engine, text: str, expected: str) -> None:
    node = parse_filter(text)
    assert node is not None
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = str(sa.select(schema.runs.c.id).where(compile_filter(node)).compile(dialect=dialect))
        assert "DROP" not in sql and "1=1" not in sql and "'1'" not in sql and "UNION" not in sql
    assert matches(engine, text) == expected
    tables = set(sa.inspect(engine).get_table_names())
    assert {"runs", "params", "tags", "latest_metrics", "experiments"} <= tables
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar() == 6
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.tags)).scalar() == 9


def test_order_by_keys_are_bound_too() -> None:
    keys = parse_order_by(['metrics."x\') DESC; DROP TABLE runs; --" DESC'])
    sql = str(sa.select(schema.runs.c.id).order_by(*compile_order_by(keys)).compile())
    assert "DROP" not in sql


def test_empty_and_or_nodes(engine: sa.Engine) -> None:
    query = sa.select(schema.runs.c.run_id)
    with engine.connect() as conn:
        assert len(conn.execute(query.where(compile_filter(And(())))).all()) == 6
        assert conn.execute(query.where(compile_filter(Or(())))).all() == []


@pytest.mark.parametrize(
    "node",
    [
        Compare("metric", "acc", "~", 1.0),
        Compare("bogus", "acc", "=", 1.0),  # type: ignore[arg-type]
        Compare("attribute", "error", "=", "x"),
        Compare("param", "x", "IN", ()),
        Compare("metric", "acc", ">", "x"),
        "metrics.acc > 1",
    ],
)
def test_malformed_hand_built_nodes_are_invalid_input(node: object) -> None:
    with pytest.raises(InvalidInput):
        compile_filter(node)  # type: ignore[arg-type]


def test_every_operator_of_the_language_compiles() -> None:
    assert set(search_module._TESTS) == set(OPERATORS)
