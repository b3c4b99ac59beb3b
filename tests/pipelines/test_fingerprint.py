"""The cache key covers every fingerprint of a step, and the package exports what callers use."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.pipelines import fingerprint
from shipyard.pipelines.fingerprint import cache_key


def test_the_package_exports_the_fingerprint_api() -> None:
    assert sorted(fingerprint.__all__) == [
        "cache_key",
        "code_fingerprint",
        "code_parts",
        "files_fingerprint",
        "register_fingerprint",
        "value_fingerprint",
    ]
    assert all(callable(getattr(fingerprint, name)) for name in fingerprint.__all__)
    assert isinstance(fingerprint.KEY_VERSION, int)


def test_every_part_of_the_key_counts() -> None:
    parts: dict[str, Any] = {
        "code": "c",
        "params": {"n": "p"},
        "inputs": {"df": "i"},
        "files": "f",
        "environment": "e",
    }
    key = cache_key(**parts)
    assert cache_key(**{**parts, "params": {"n": "p"}}) == key
    for name, other in [
        ("code", "c2"),
        ("params", {"n": "p2"}),
        ("params", {"m": "p"}),
        ("inputs", {"df": "i2"}),
        ("files", None),
        ("environment", None),
    ]:
        assert cache_key(**{**parts, name: other}) != key, name


def test_the_key_takes_fingerprints_not_raw_values() -> None:
    with pytest.raises(InvalidInput, match="params"):
        cache_key(code="c", params={"n": 3}, inputs={}, files=None, environment=None)  # type: ignore[dict-item]
