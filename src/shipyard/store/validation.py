"""Checks on names, keys and values shared by every Store implementation and the Run handle."""

from __future__ import annotations

import math
import re

from shipyard.errors import InvalidInput

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-/ ]+$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def check_key(key: object, kind: str = "key") -> str:
    """A metric, param or tag key: 1-250 characters from [A-Za-z0-9_.-/ ]."""
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, got {type(key).__name__}: {key!r}")
    if not key:
        raise InvalidInput(f"{kind} key must not be empty")
    if len(key) > MAX_KEY:
        raise InvalidInput(f"{kind} key {key[:40]!r}... is {len(key)} characters; max {MAX_KEY}")
    if not _KEY_RE.match(key):
        bad = sorted({c for c in key if not _KEY_RE.match(c)})
        raise InvalidInput(
            f"{kind} key {key!r} has characters outside [A-Za-z0-9_.-/ ]: {''.join(bad)!r}"
        )
    return key


def check_text(text: str, what: str) -> str:
    """Text the database can store: encodable as UTF-8 (no lone surrogates, which Python
    makes from undecodable file names and arguments)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} {text[:60]!r} is not valid Unicode text ({exc.reason} at position "
            f"{exc.start}); decode it with errors='replace' first"
        ) from None
    return text


def check_name(name: object, kind: str) -> str:
    """An experiment or run name: non-empty, at most 250 characters, no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{kind} name must be a non-empty string, got {name!r}")
    if kind == "experiment" and name.isdigit():
        # Experiments are named by name or id everywhere; "3" must mean one thing.
        raise InvalidInput(f"experiment name {name!r} is only digits, which reads as an id")
    if len(name) > MAX_KEY:
        raise InvalidInput(f"{kind} name is {len(name)} characters; max {MAX_KEY}")
    if any(ord(c) < 32 for c in name):
        raise InvalidInput(f"{kind} name {name!r} contains control characters")
    return check_text(name, f"{kind} name")


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_", "bool8")


def check_metric_value(key: str, value: object) -> float:
    """A number (booleans excluded, numpy's too); NaN and inf are allowed and kept."""
    if type(value) is float:
        return value
    if _is_bool(value) or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise InvalidInput(
            f"metric {key!r} must be a number, got {type(value).__name__}: {value!r:.60}"
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"metric {key!r} value {value!r:.60} is not a float: {exc}") from None


INT64 = (-(2**63), 2**63 - 1)


def check_step(key: str, step: object) -> int:
    """An integer step that fits the database's 64-bit integer column."""
    if _is_bool(step) or not hasattr(step, "__index__"):
        raise InvalidInput(f"step of metric {key!r} must be an integer, got {step!r}")
    number = int(step)
    if not INT64[0] <= number <= INT64[1]:
        raise InvalidInput(f"step of metric {key!r} is {number}, outside the 64-bit range")
    return number


def check_timestamp(key: str, timestamp: object) -> float:
    """Epoch seconds: a finite number (NaN or 1e300 would make the row unstorable)."""
    if (
        _is_bool(timestamp)
        or isinstance(timestamp, (str, bytes))
        or not hasattr(timestamp, "__float__")
    ):
        raise InvalidInput(f"timestamp of metric {key!r} must be epoch seconds, got {timestamp!r}")
    number = float(timestamp)
    if not math.isfinite(number) or abs(number) > 1e12:
        raise InvalidInput(f"timestamp of metric {key!r} is {number!r}, not epoch seconds")
    return number


def param_value(key: str, value: object) -> str:
    """Params are stored as text; over-long values are refused rather than truncated."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise InvalidInput(f"param {key!r} value is {len(text)} characters; max {MAX_PARAM_VALUE}")
    return check_text(text, f"param {key!r} value")


def tag_value(key: str, value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE:
        raise InvalidInput(f"tag {key!r} value is {len(text)} characters; max {MAX_TAG_VALUE}")
    return check_text(text, f"tag {key!r} value")


def numeric_or_none(text: str) -> float | None:
    """The param's value as a finite number, so filters can compare params numerically."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise InvalidInput(f"not a run id (32 lowercase hex characters): {run_id!r}")
    return run_id


_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
# "latest" always means the newest version, so it cannot be set by hand.
RESERVED_ALIASES = ("latest",)


def check_model_name(name: object) -> str:
    """A registered model's name: letters, digits and ``_ . -`` (it goes into model URIs, so
    no ``/`` or ``@``), at most 250 characters."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"model name must be a non-empty string, got {name!r}")
    if len(name) > MAX_KEY:
        raise InvalidInput(f"model name is {len(name)} characters; max {MAX_KEY}")
    if not _MODEL_NAME_RE.match(name):
        raise InvalidInput(
            f"model name {name!r} must start with a letter or digit and hold only letters, "
            "digits and _ . - (it is part of models:/NAME/VERSION URIs)"
        )
    return name


def check_alias(alias: object, *, settable: bool = False) -> str:
    """An alias such as ``production``: a letter, then letters, digits, ``_`` or ``-``."""
    if not isinstance(alias, str) or not alias:
        raise InvalidInput(f"alias must be a non-empty string, got {alias!r}")
    if len(alias) > MAX_KEY or not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias[:60]!r} must start with a letter and hold only letters, digits, "
            "_ and - (at most 250 characters)"
        )
    if settable and alias in RESERVED_ALIASES:
        raise InvalidInput(f"alias {alias!r} is reserved: it always means the newest version")
    return alias


def check_version(version: object) -> int:
    """A model version number: a positive integer (digits in a string are accepted)."""
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"model version must be a positive integer, got {version!r}")
    return version


def check_endpoint_name(name: object) -> str:
    """An endpoint's name: as a model name (it goes into URL paths, so no ``/``)."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"endpoint name must be a non-empty string, got {name!r}")
    if len(name) > MAX_KEY or not _MODEL_NAME_RE.match(name):
        raise InvalidInput(
            f"endpoint name {name[:60]!r} must start with a letter or digit and hold only "
            "letters, digits and _ . - (at most 250 characters; it is part of URL paths)"
        )
    return name
