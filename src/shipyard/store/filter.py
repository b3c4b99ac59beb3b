"""The run-search filter language, parsed into a small backend-neutral AST.

    metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE 'vision%')
    NOT status IN ('failed', 'killed') AND start_time >= '2024-06-01'

Identifiers are ``metrics.KEY``, ``params.KEY``, ``tags.KEY``, ``attributes.NAME`` or a bare
attribute NAME. A key may be quoted with double quotes or backticks (``metrics."val/loss"``);
text values use single or double quotes; a quote inside is written twice (``'it''s'``).
LIKE patterns use ``%`` and ``_``, with ``\\`` to match them literally.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, TypeAlias

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from shipyard.errors import InvalidInput
from shipyard.store.entities import LIFECYCLES, RUN_STATUSES

Kind: TypeAlias = Literal["metric", "param", "tag", "attribute"]
Scalar: TypeAlias = str | float | int
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None

# attribute name -> what its values are; aliases follow MLflow's names for the same things
ATTRIBUTES: dict[str, str] = {
    "run_id": "text",
    "name": "text",
    "status": "status",
    "user": "text",
    "lifecycle": "lifecycle",
    "parent_id": "text",
    "experiment_id": "integer",
    "start_time": "time",
    "end_time": "time",
    "duration": "number",
}
ALIASES = {"id": "run_id", "run_name": "name", "user_id": "user", "lifecycle_stage": "lifecycle"}
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE",
             "IN", "NOT IN", "IS NULL", "IS NOT NULL")  # fmt: skip
MAX_LENGTH = 20_000
MAX_DEPTH = 100  # keeps the recursive AST walkers (here and in every backend) far from the limit

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric", "metric": "metric", "params": "param", "param": "param",
    "tags": "tag", "tag": "tag", "attributes": "attribute", "attribute": "attribute",
    "attr": "attribute",
}  # fmt: skip
_ORDERING = frozenset({"<", "<=", ">", ">="})
_TEXT_ONLY = frozenset({"LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"})
_CANONICAL_OP = {"==": "=", "<>": "!="}
_VALUE_TOKENS = frozenset({"NUMBER", "SQ_STRING", "DQ_STRING"})

# One combined token for a prefixed identifier keeps "metrics.val/loss" from being read as
# a division, and its higher priority beats NAME on the shared "metrics" prefix.
_GRAMMAR = r"""
filter: disjunction
order: ident (ASC | DESC)?

?disjunction: conjunction (_OR conjunction)*
?conjunction: _negatable (_AND _negatable)*
_negatable: negation | comparison | membership | null_test | _LPAR disjunction _RPAR
negation: NOT _negatable
comparison: ident op value
membership: ident NOT? IN _LPAR [value (_COMMA value)*] _RPAR
null_test: ident IS NOT? NULL
op: CMP_OP | NOT? LIKE | NOT? ILIKE
?ident: KEYED | NAME
?value: NUMBER | SQ_STRING | DQ_STRING | NULL

KEYED.2: _PREFIX (DQ_STRING | _BACKTICKED | _BARE_KEY)?
_PREFIX: /(?:metrics?|params?|tags?|attributes?|attr)\./i
_BACKTICKED: /`(?:[^`]|``)*`/
_BARE_KEY: /[\w.\/-]+/
NAME: /[a-z_]\w*/i
NUMBER: /[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?/i
SQ_STRING: /'(?:[^']|'')*'/
DQ_STRING: /"(?:[^"]|"")*"/
CMP_OP: /==|=|!=|<>|<=|>=|<|>/
_AND: "and"i
_OR: "or"i
NOT: "not"i
IN: "in"i
IS: "is"i
NULL: "null"i
LIKE: "like"i
ILIKE: "ilike"i
ASC: "asc"i
DESC: "desc"i
_LPAR: "("
_RPAR: ")"
_COMMA: ","
%ignore /\s+/
"""


@dataclass(frozen=True)
class Compare:
    """``kind.key op value``; value is a tuple for IN / NOT IN and None for IS [NOT] NULL."""

    kind: Kind
    key: str
    op: str
    value: Value = None


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node: TypeAlias = Compare | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` item: sort by ``kind.key``, ascending unless ``descending``."""

    kind: Kind
    key: str
    descending: bool = False


def parse_filter(text: str) -> Node | None:
    """Parse a run filter into an AST; None when the filter is empty or only whitespace."""
    if not isinstance(text, str):
        raise InvalidInput(f"a filter must be a string, got {type(text).__name__}")
    if not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        raise InvalidInput(f"filter is {len(text)} characters long; the limit is {MAX_LENGTH}")
    tree = _parse(text, "filter", "filter")
    return _Builder(text, "filter").node(tree.children[0], 0)


def parse_order_by(items: Sequence[str]) -> list[OrderKey]:
    """Parse ``order_by`` items such as ``"metrics.acc DESC"``; a lone string is one item."""
    keys: list[OrderKey] = []
    for item in [items] if isinstance(items, str) else items:
        if not isinstance(item, str):
            raise InvalidInput(f"order_by items must be strings, got {item!r}")
        if not item.strip():
            raise InvalidInput("empty order_by item; expected e.g. 'metrics.acc DESC'")
        if len(item) > MAX_LENGTH:
            raise InvalidInput(f"order_by item is {len(item)} characters long")
        what = f"order_by item {item!r}"
        tree = _parse(item, "order", what)
        ident, *direction = tree.children
        assert isinstance(ident, Token)  # `?ident` inlines to the token itself
        kind, key = _Builder(item, what).identifier(ident)
        descending = bool(direction) and str(direction[0]).upper() == "DESC"
        keys.append(OrderKey(kind, key, descending))
    return keys


@functools.cache
def _parser() -> Lark:
    # Built on first use only: `import shipyard` must not pay for grammar compilation.
    return Lark(
        _GRAMMAR,
        parser="lalr",
        lexer="basic",
        start=["filter", "order"],
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _fail(what: str, text: str, pos: int, reason: str) -> InvalidInput:
    """An InvalidInput pointing a caret at ``pos`` in ``text``."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start : len(text) if end == -1 else end]
    # Tabs and other whitespace would shift the caret, so show them as plain spaces.
    shown = "".join(" " if ch.isspace() else ch for ch in line)
    return InvalidInput(
        f"invalid {what} at position {pos}: {reason}\n  {shown}\n  {' ' * (pos - start)}^"
    )


def _parse(text: str, start: str, what: str) -> Tree[Token]:
    """Run the LALR parser, turning lark's errors into InvalidInput with a position."""
    interactive = _parser().parse_interactive(text, start=start)
    seen: list[Token] = []
    try:
        # Stepping token by token is how we learn which token came before an error.
        for token in interactive.iter_parse():
            seen.append(token)
        tree: Tree[Token] = interactive.feed_eof(seen[-1] if seen else None)
        return tree
    except UnexpectedCharacters as exc:
        pos, reason = _bad_character(text, exc.pos_in_stream or 0)
        raise _fail(what, text, pos, reason) from None
    except UnexpectedToken as exc:
        before = [t for t in seen if t is not exc.token]
        previous = before[-1] if before else None
        at_end = exc.token.type == "$END"
        pos = len(text.rstrip()) if at_end else exc.token.start_pos
        # LALR merges look-aheads of similar states, so exc.expected can list tokens that are
        # wrong here (',' after a plain comparison); accepts() replays the parser to be exact.
        reason = _explain(set(interactive.accepts()), exc.token, previous)
        raise _fail(what, text, pos or 0, reason) from None
    except LarkError as exc:  # anything else lark may raise; never let it escape raw
        raise InvalidInput(f"invalid {what}: {exc}") from None


def _bad_character(text: str, pos: int) -> tuple[int, str]:
    """Where and why the text cannot be split into tokens at ``pos``."""
    char = text[pos]
    if char in "'\"`" and text.find(char, pos + 1) == -1:
        return pos, f"missing closing {char} for the text that starts here"
    if char == "`":
        return pos, "backticks quote keys after a prefix only, e.g. params.`my key`"
    word = re.search(r"[A-Za-z_]\w*$", text[:pos])
    if char == "." and word:
        reason = f"unknown prefix '{word.group()}.'; use metrics., params., tags. or attributes."
        return word.start(), reason
    return pos, f"unexpected character {char!r}"


def _explain(expected: set[str], token: Token, previous: Token | None) -> str:
    """A sentence saying what the parser wanted instead of ``token``."""
    after = f" after {str(previous)!r}" if previous is not None else ""
    if expected & _VALUE_TOKENS:
        hint = f" (quote text: '{token}')" if token.type == "NAME" else ""
        return f"expected a value{after}{hint}"
    if "CMP_OP" in expected:
        return f"expected an operator{after}: = != < <= > >= LIKE ILIKE IN IS"
    if "KEYED" in expected:
        return f"expected metrics.KEY, params.KEY, tags.KEY or a run attribute{after}"
    if "NULL" in expected:
        return f"expected NULL{after}"
    if "_LPAR" in expected:
        return f"expected '('{after}"
    if "ASC" in expected:
        return f"expected ASC or DESC{after}"
    if "_COMMA" in expected:
        return f"expected ',' or ')'{after}"
    if token.type == "_RPAR":
        return "')' without a matching '('"
    if token.type == "$END" and "_RPAR" in expected:
        return "missing ')'"
    if "_AND" in expected:
        end = "the end of the filter" if "$END" in expected else "')'"
        return f"expected AND, OR or {end}{after}"
    return f"unexpected {str(token)!r}{after}"


class _Builder:
    """Turns the parse tree into AST nodes, checking what the grammar cannot."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what

    def fail(self, pos: int | None, reason: str) -> InvalidInput:
        return _fail(self.what, self.text, pos or 0, reason)

    def node(self, tree: Tree[Token] | Token, depth: int) -> Node:
        assert isinstance(tree, Tree), tree  # the grammar only puts tokens inside rules
        if depth > MAX_DEPTH:
            raise self.fail(tree.meta.start_pos, f"filter nests deeper than {MAX_DEPTH} levels")
        data, children = str(tree.data), tree.children
        if data == "disjunction":
            return Or(tuple(self.node(child, depth + 1) for child in children))
        if data == "conjunction":
            return And(tuple(self.node(child, depth + 1) for child in children))
        if data == "negation":
            return Not(self.node(children[1], depth + 1))
        tokens = [child for child in children if isinstance(child, Token)]
        kind, key = self.identifier(tokens[0])
        if data == "null_test":
            negated = any(t.type == "NOT" for t in tokens)
            return Compare(kind, key, "IS NOT NULL" if negated else "IS NULL")
        if data == "membership":
            return self.membership(kind, key, tokens)
        op_tree, value_token = children[1], tokens[1]
        assert isinstance(op_tree, Tree)
        op_tokens = [t for t in op_tree.children if isinstance(t, Token)]
        op = " ".join(str(t).upper() for t in op_tokens)
        op = _CANONICAL_OP.get(op, op)
        if value_token.type == "NULL":
            raise self.fail(value_token.start_pos, "NULL only works in IS NULL / IS NOT NULL")
        value = self.literal(value_token)
        if op in _TEXT_ONLY:
            return Compare(kind, key, op, self.pattern(kind, key, value, op_tokens[0], value_token))
        return Compare(kind, key, op, self.checked(kind, key, op, value, op_tokens[0], value_token))

    def identifier(self, token: Token) -> tuple[Kind, str]:
        """``(kind, key)`` for an identifier token; attribute names come back canonical."""
        raw = str(token)
        if token.type == "NAME":
            kind: Kind = "attribute"
            key = raw
        else:
            prefix, _, key = raw.partition(".")
            kind = _PREFIXES[prefix.lower()]
            if not key:
                raise self.fail(token.end_pos, f"expected a key right after '{prefix}.'")
            if key[0] in '"`':
                key = key[1:-1].replace(key[0] * 2, key[0])
                if not key:
                    raise self.fail(token.start_pos, "empty key")
        if kind != "attribute":
            return kind, key
        name = ALIASES.get(key.lower(), key.lower())
        if name not in ATTRIBUTES:
            valid = ", ".join(sorted(ATTRIBUTES))
            raise self.fail(token.start_pos, f"unknown attribute {key!r}; valid ones: {valid}")
        return kind, name

    def literal(self, token: Token) -> Scalar:
        raw = str(token)
        if token.type == "SQ_STRING":
            return raw[1:-1].replace("''", "'")
        if token.type == "DQ_STRING":
            return raw[1:-1].replace('""', '"')
        try:
            number: int | float = int(raw) if re.fullmatch(r"[+-]?\d+", raw) else float(raw)
            # Every backend stores numbers as doubles, so a literal must fit in one.
            in_range = math.isfinite(float(number))
        except (ValueError, OverflowError):  # also int()'s limit on the number of digits
            in_range = False
        if not in_range:
            raise self.fail(token.start_pos, f"number out of range: {raw[:30]}")
        return number

    def membership(self, kind: Kind, key: str, tokens: list[Token]) -> Compare:
        keyword = next(t for t in tokens if t.type == "IN")
        op = "NOT IN" if any(t.type == "NOT" for t in tokens) else "IN"
        values: list[Scalar] = []
        for token in tokens[tokens.index(keyword) + 1 :]:
            if token.type == "NULL":
                raise self.fail(token.start_pos, "NULL cannot be in an IN list; use IS NULL")
            values.append(self.checked(kind, key, "=", self.literal(token), keyword, token))
            if isinstance(values[-1], str) != isinstance(values[0], str):
                raise self.fail(token.start_pos, "an IN list cannot mix numbers and text")
        if not values:
            raise self.fail(keyword.start_pos, f"{op} needs at least one value")
        return Compare(kind, key, op, tuple(values))

    def pattern(self, kind: Kind, key: str, value: Scalar, op: Token, token: Token) -> str:
        """Check a LIKE/ILIKE pattern and the identifier it applies to."""
        numeric = ("integer", "time", "number")
        if kind == "metric" or (kind == "attribute" and ATTRIBUTES[key] in numeric):
            subject = f"metrics.{key}" if kind == "metric" else key
            raise self.fail(op.start_pos, f"{subject} holds numbers; LIKE applies to text")
        if not isinstance(value, str):
            raise self.fail(token.start_pos, "LIKE needs a quoted pattern, e.g. 'abc%'")
        if (len(value) - len(value.rstrip("\\"))) % 2:
            raise self.fail(token.start_pos, "pattern ends with a lone escape character '\\'")
        return value

    def checked(
        self, kind: Kind, key: str, op: str, value: Scalar, op_token: Token, token: Token
    ) -> Scalar:
        """The value, normalised, once it makes sense for ``kind.key op``."""
        if kind == "param":
            if op in _ORDERING and isinstance(value, str):
                reason = f"'{op}' needs a number; text params support = != LIKE ILIKE IN"
                raise self.fail(token.start_pos, reason)
            return value
        value_type = {"metric": "number", "tag": "text"}.get(kind) or ATTRIBUTES[key]
        subject = f"{kind}s.{key}" if kind != "attribute" else key
        if value_type in ("text", "status", "lifecycle"):
            if op in _ORDERING:
                raise self.fail(op_token.start_pos, f"{subject} holds text: use = != LIKE ILIKE IN")
            if not isinstance(value, str):
                reason = f"{subject} holds text: quote the value, e.g. '{value}'"
                raise self.fail(token.start_pos, reason)
            if value_type == "text":
                return value
            allowed = RUN_STATUSES if value_type == "status" else LIFECYCLES
            if value.lower() not in allowed:
                raise self.fail(token.start_pos, f"{key} must be one of: {', '.join(allowed)}")
            return value.lower()
        if value_type == "time" and isinstance(value, str):
            return self.timestamp(value, token)
        if value_type == "integer" and isinstance(value, str) and value.strip().isdecimal():
            value = int(value)  # MLflow clients send experiment ids as strings
        if isinstance(value, str):
            raise self.fail(token.start_pos, f"{subject} holds numbers, not text like {value!r}")
        if value_type == "integer":
            if value != int(value) or not -(2**31) <= value < 2**31:  # ids are 32-bit columns
                raise self.fail(token.start_pos, f"{key} is a 32-bit whole number, not {value!r}")
            return int(value)
        return float(value)

    def timestamp(self, value: str, token: Token) -> float:
        """Epoch seconds for an ISO-8601 date or datetime; UTC when it names no zone."""
        text = value.strip()
        if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not know "Z"
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(
                token.start_pos, f"expected a number or an ISO-8601 date/time, not {value!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()


__all__ = [
    "ALIASES",
    "ATTRIBUTES",
    "OPERATORS",
    "And",
    "Compare",
    "Kind",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]
