"""The filter language parser: what it accepts, the AST it builds, and where it says you erred."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from shipyard.errors import InvalidInput
from shipyard.store import filter as f
from shipyard.store.filter import And, Compare, Not, Or, OrderKey, parse_filter, parse_order_by


def metric(key: str, op: str, value: object = None) -> Compare:
    return Compare("metric", key, op, value)  # type: ignore[arg-type]


def param(key: str, op: str, value: object = None) -> Compare:
    return Compare("param", key, op, value)  # type: ignore[arg-type]


def tag(key: str, op: str, value: object = None) -> Compare:
    return Compare("tag", key, op, value)  # type: ignore[arg-type]


def attr(key: str, op: str, value: object = None) -> Compare:
    return Compare("attribute", key, op, value)  # type: ignore[arg-type]


A, B, C = metric("a", "=", 1.0), metric("b", "=", 2.0), metric("c", "=", 3.0)

VALID = [
    # metrics, prefixes, operators and number forms
    ("metrics.acc > 0.9", metric("acc", ">", 0.9)),
    ("METRICS.acc >= 1", metric("acc", ">=", 1.0)),
    ("metric.acc = -1.5e-3", metric("acc", "=", -0.0015)),
    ("metrics.acc<.5", metric("acc", "<", 0.5)),
    ("metrics.acc <= +2E2", metric("acc", "<=", 200.0)),
    ("metrics.f1 == 1", metric("f1", "=", 1.0)),
    ("metrics.loss.train <> 2", metric("loss.train", "!=", 2.0)),
    ("metrics.val/loss != 1", metric("val/loss", "!=", 1.0)),
    ("metrics.val-loss>-1", metric("val-loss", ">", -1.0)),
    ("metrics.1st > 0", metric("1st", ">", 0.0)),
    ('metrics."val/loss" < 0.3', metric("val/loss", "<", 0.3)),
    ("metrics.`val loss` IN (1, 2.5)", metric("val loss", "IN", (1.0, 2.5))),
    ('metrics."a""b" = 1', metric('a"b', "=", 1.0)),
    ("metrics.`a``b` = 1", metric("a`b", "=", 1.0)),
    ("metrics.and > 1", metric("and", ">", 1.0)),
    ("metrics.x NOT IN (1)", metric("x", "NOT IN", (1.0,))),
    ("metrics.x is null", metric("x", "IS NULL")),
    ("metrics.x IS NOT NULL", metric("x", "IS NOT NULL")),
    # params: numbers stay numbers, text stays text
    ("params.layers = 100", param("layers", "=", 100)),
    ("param.lr = 0.1", param("lr", "=", 0.1)),
    ("params.lr = '0.1'", param("lr", "=", "0.1")),
    ('params.model = "rf"', param("model", "=", "rf")),
    ("params.`learning-rate` < 1e-2", param("learning-rate", "<", 0.01)),
    ("params.größe = 1", param("größe", "=", 1)),
    ("params.n IN (0, 110)", param("n", "IN", (0, 110))),
    ("params.m not in ('a', \"b\")", param("m", "NOT IN", ("a", "b"))),
    ("params.opt LIKE 'ad%'", param("opt", "LIKE", "ad%")),
    ("params.opt not like 'ad%'", param("opt", "NOT LIKE", "ad%")),
    ("params.opt ILike 'AD%'", param("opt", "ILIKE", "AD%")),
    ("params.opt NOT ILIKE 'a\\_b'", param("opt", "NOT ILIKE", "a\\_b")),
    ("params.x = ''", param("x", "=", "")),
    # tags
    ("tags.note = 'it''s'", tag("note", "=", "it's")),
    ('tag.note = "say ""hi"""', tag("note", "=", 'say "hi"')),
    ("tags.mlflow.runName != 'x'", tag("mlflow.runName", "!=", "x")),
    ("tags.t IS NULL", tag("t", "IS NULL")),
    # attributes, aliases and value normalisation
    ("status = 'FINISHED'", attr("status", "=", "finished")),
    ("attributes.status IN ('running', 'Killed')", attr("status", "IN", ("running", "killed"))),
    ("attr.run_id = 'abc'", attr("run_id", "=", "abc")),
    ("attribute.`id` = 'abc'", attr("run_id", "=", "abc")),
    ("ID = 'abc'", attr("run_id", "=", "abc")),
    ("run_name LIKE 'r%'", attr("name", "LIKE", "r%")),
    ("user_id = 'ann'", attr("user", "=", "ann")),
    ("lifecycle_stage = 'Deleted'", attr("lifecycle", "=", "deleted")),
    ("Start_Time > 1700000000", attr("start_time", ">", 1700000000.0)),
    ("start_time >= '2024-01-01'", attr("start_time", ">=", 1704067200.0)),
    ("end_time < '2024-01-01T12:00:00Z'", attr("end_time", "<", 1704110400.0)),
    ("end_time < '2024-01-01T12:00:00+02:00'", attr("end_time", "<", 1704103200.0)),
    ("end_time IN ('2024-01-01', 0)", attr("end_time", "IN", (1704067200.0, 0.0))),
    ("experiment_id = '3'", attr("experiment_id", "=", 3)),
    ("experiment_id IN (1, '2', 3.0)", attr("experiment_id", "IN", (1, 2, 3))),
    ("duration > 60", attr("duration", ">", 60.0)),
    ("parent_id IS NOT NULL", attr("parent_id", "IS NOT NULL")),
    # boolean structure: AND binds tighter than OR, NOT tightest
    ("metrics.a = 1 OR metrics.b = 2 AND metrics.c = 3", Or((A, And((B, C))))),
    ("metrics.a = 1 AND metrics.b = 2 OR metrics.c = 3", Or((And((A, B)), C))),
    ("(metrics.a = 1 OR metrics.b = 2) AND metrics.c = 3", And((Or((A, B)), C))),
    ("metrics.a = 1 and metrics.b = 2 and metrics.c = 3", And((A, B, C))),
    ("NOT metrics.a = 1 AND metrics.b = 2", And((Not(A), B))),
    ("NOT (metrics.a = 1 OR metrics.b = 2)", Not(Or((A, B)))),
    ("not not metrics.a = 1", Not(Not(A))),
    ("((metrics.a = 1))", A),
    ("metrics.a=1 aNd(metrics.b=2 oR metrics.c=3)", And((A, Or((B, C))))),
    ("\n\tmetrics.a = 1\n  AND\tmetrics.b = 2  ", And((A, B))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_filters(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_filter_is_no_filter(text: str) -> None:
    assert parse_filter(text) is None


INVALID = [
    # (filter, position, words the message must contain)
    ("metrics.acc > AND x", 14, "expected a value after '>'"),
    ("metrics.acc >", 13, "expected a value after '>'"),
    ("metrics.acc >   ", 13, "expected a value after '>'"),
    ("params.x = 'a' AND", 18, "after 'AND'"),
    ("((status = 'running')", 21, "missing ')'"),
    ("status = 'running')", 18, "')' without a matching '('"),
    ("(metrics.a = 1 metrics.b = 2)", 15, "expected AND, OR or ')'"),
    ("metrics.a = 1 metrics.b = 2", 14, "expected AND, OR or the end of the filter"),
    ("metrics.acc", 11, "expected an operator after 'metrics.acc'"),
    ("metrics.acc => 1", 13, "expected a value after '='"),
    ("status = running", 9, "quote text: 'running'"),
    ("metrics.acc > 'x'", 14, "metrics.acc holds numbers"),
    ("metrics.acc = '1'", 14, "holds numbers"),
    ("metrics.acc IN (1, 'x')", 19, "holds numbers"),
    ("metrics.acc LIKE 'x'", 12, "LIKE applies to text"),
    ("metrics. > 1", 8, "expected a key right after 'metrics.'"),
    ('metrics."" > 1', 0, "empty key"),
    ('metrics."val > 1', 8, 'missing closing "'),
    ("name = 'abc", 7, "missing closing '"),
    ("`a` = 1", 0, "backticks quote keys after a prefix only"),
    ("metricz.acc > 1", 0, "unknown prefix 'metricz.'"),
    ("metrics.a # 1", 10, "unexpected character '#'"),
    ("colour = 'red'", 0, "unknown attribute 'colour'; valid ones: duration, end_time"),
    ("attributes.colour = 'red'", 0, "unknown attribute 'colour'"),
    ("status = 'done'", 9, "status must be one of: running, finished, failed, killed"),
    ("status IN ('running', 'done')", 22, "must be one of"),
    ("lifecycle = 'gone'", 12, "lifecycle must be one of: active, deleted"),
    ("tags.x > 'a'", 7, "tags.x holds text: use = != LIKE ILIKE IN"),
    ("tags.x = 5", 9, "quote the value, e.g. '5'"),
    ("name >= 'a'", 5, "name holds text"),
    ("params.x < '5'", 11, "'<' needs a number"),
    ("params.x LIKE 5", 14, "LIKE needs a quoted pattern"),
    ("params.x IN (1, 'a')", 16, "cannot mix numbers and text"),
    ("name LIKE 'abc\\'", 10, "lone escape character"),
    ("duration LIKE '1%'", 9, "duration holds numbers"),
    ("start_time = 'yesterday'", 13, "ISO-8601"),
    ("start_time LIKE '2024%'", 11, "start_time holds numbers"),
    ("experiment_id = 1.5", 16, "whole number"),
    ("experiment_id = 'one'", 16, "holds numbers"),
    ("experiment_id = 99999999999", 16, "32-bit"),
    ("metrics.a = 1e999", 12, "number out of range"),
    ("params.a = " + "9" * 400, 11, "number out of range"),
    ("params.a = " + "9" * 5000, 11, "number out of range"),
    ("run_id = NULL", 9, "NULL only works in IS NULL"),
    ("run_id IN ('a', NULL)", 16, "use IS NULL"),
    ("run_id IN ()", 7, "IN needs at least one value"),
    ("run_id NOT IN ()", 11, "NOT IN needs at least one value"),
    ("name IN ('a',)", 13, "expected a value after ','"),
    ("name IN ('a' 'b')", 13, "expected ',' or ')'"),
    ("name IN 'a'", 8, "expected '(' after 'IN'"),
    ("name IS", 7, "expected NULL after 'IS'"),
    ("name IS NOT 'a'", 12, "expected NULL after 'NOT'"),
    ("name is null null", 13, "expected AND, OR"),
    ("NOT", 3, "after 'NOT'"),
    ("AND name = 'a'", 0, "expected metrics.KEY, params.KEY, tags.KEY or a run attribute"),
    ("metrics.a = 1 OR OR metrics.b = 2", 17, "after 'OR'"),
    ("()", 1, "after '('"),
    ("metrics.a =\n\tAND", 13, "expected a value"),
]


@pytest.mark.parametrize(("text", "position", "words"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_filters_point_at_the_error(text: str, position: int, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    message = info.value.message
    assert message.startswith(f"invalid filter at position {position}: ")
    assert words in message
    # The caret line points at the same character as the position.
    line_start = text.rfind("\n", 0, position) + 1
    assert message.splitlines()[-1] == "  " + " " * (position - line_start) + "^"


def test_error_message_layout() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.acc > AND x")
    assert info.value.message == (
        "invalid filter at position 14: expected a value after '>'\n"
        "  metrics.acc > AND x\n"
        "                ^"
    )


def test_multiline_filter_shows_the_offending_line() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.a = 1 AND\n\tname = 5")
    assert info.value.message.splitlines()[1:] == ["   name = 5", "          ^"]


@pytest.mark.parametrize(
    "text",
    [
        "NOT " * (f.MAX_DEPTH + 1) + "metrics.a = 1",
        "metrics.a = 1 AND (" * 120 + "metrics.a = 1 OR metrics.b = 2" + ")" * 120,
    ],
    ids=["not-chain", "and-or-chain"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="nests deeper than"):
        parse_filter(text)


def test_moderate_nesting_is_fine() -> None:
    node = parse_filter("NOT " * 50 + "metrics.a = 1")
    for _ in range(50):
        assert isinstance(node, Not)
        node = node.item
    assert node == A


def test_overlong_filter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="characters long"):
        parse_filter("metrics.a = 1 OR " * 2000 + "metrics.a = 1")


def test_non_string_filter_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        parse_filter(5)  # type: ignore[arg-type]


# Fragments that mostly form tokens of the language, so the fuzzing reaches the parser.
FRAGMENTS = [
    "metrics.acc", "params.`a b`", 'tags."x"', "status", "name", "start_time", "metrics.",
    "attributes.nope", " AND ", " OR ", "NOT ", " IN ", " IS ", " NULL", " LIKE ", "(", ")",
    ",", "=", "!=", "<", ">=", "<>", "1", "-2.5e3", "'a''b'", '"x"', "'", '"', "`", " ",
    "'running'", "'2024-01-01'", "\\", "%", "#", "\n", "9" * 400, "1e400", "NOT (", "é",
]  # fmt: skip


def test_any_text_parses_or_raises_invalid_input() -> None:
    # A fixed seed keeps failures reproducible (and writes no example database to disk).
    rng = random.Random(20240601)
    for _ in range(3000):
        text = "".join(rng.choices(FRAGMENTS, k=rng.randint(0, 12)))
        try:
            parse_filter(text)
        except InvalidInput as exc:
            assert "filter" in exc.message, text


VALID_ORDER = [
    ("metrics.acc DESC", OrderKey("metric", "acc", True)),
    ("params.lr", OrderKey("param", "lr", False)),
    ("start_time asc", OrderKey("attribute", "start_time", False)),
    ('metrics."val/loss" desc', OrderKey("metric", "val/loss", True)),
    ("tags.`my tag` Desc", OrderKey("tag", "my tag", True)),
    ("attributes.run_name", OrderKey("attribute", "name", False)),
    ("  duration   DESC  ", OrderKey("attribute", "duration", True)),
]


@pytest.mark.parametrize(("text", "expected"), VALID_ORDER, ids=[v[0] for v in VALID_ORDER])
def test_valid_order_by(text: str, expected: OrderKey) -> None:
    assert parse_order_by([text]) == [expected]


def test_order_by_keeps_item_order_and_accepts_one_string() -> None:
    assert parse_order_by(["status", "metrics.acc DESC"]) == [
        OrderKey("attribute", "status"),
        OrderKey("metric", "acc", True),
    ]
    assert parse_order_by("name DESC") == [OrderKey("attribute", "name", True)]
    assert parse_order_by([]) == []


INVALID_ORDER = [
    ("metrics.acc DESK", "at position 12: expected ASC or DESC after 'metrics.acc'"),
    ("metrics.acc desc desc", "at position 17"),
    ("metrics.acc > 1", "at position 12: expected ASC or DESC"),
    ("colour", "at position 0: unknown attribute 'colour'"),
    ("metrics.", "at position 8: expected a key"),
    ("DESC", "at position 0"),
    ("metrics.`x DESC", "missing closing `"),
]


@pytest.mark.parametrize(("text", "words"), INVALID_ORDER, ids=[i[0] for i in INVALID_ORDER])
def test_invalid_order_by_names_the_item(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(["start_time", text])
    assert info.value.message.startswith(f"invalid order_by item {text!r} ")
    assert words in info.value.message


@pytest.mark.parametrize(("item", "words"), [("", "empty order_by item"), (5, "must be strings")])
def test_order_by_items_must_be_non_empty_strings(item: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_order_by([item])  # type: ignore[list-item]


def test_the_parser_is_built_once() -> None:
    assert f._parser() is f._parser()


def test_importing_the_sql_store_does_not_import_lark() -> None:
    code = "import sys, shipyard.store.sql.store; print('lark' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
