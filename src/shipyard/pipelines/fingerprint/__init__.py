"""Fingerprints for a step's cache key: its code, the files it reads and its values.

``cache_key`` combines a step's code (``code_fingerprint``, in ``code.py``; what is project code
is in ``scope.py``), parameter and input values (``value_fingerprint``, in ``values.py``),
declared files (``files_fingerprint``, in ``files.py``) and the environment digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint.code import code_fingerprint as code_fingerprint
from shipyard.pipelines.fingerprint.code import code_parts as code_parts
from shipyard.pipelines.fingerprint.files import files_fingerprint as files_fingerprint
from shipyard.pipelines.fingerprint.values import MAX_CONSTANT_ITEMS as MAX_CONSTANT_ITEMS
from shipyard.pipelines.fingerprint.values import register_fingerprint as register_fingerprint
from shipyard.pipelines.fingerprint.values import value_fingerprint as value_fingerprint

__all__ = [
    "cache_key",
    "code_fingerprint",
    "code_parts",
    "files_fingerprint",
    "register_fingerprint",
    "value_fingerprint",
]

KEY_VERSION = 1  # bump when what a key covers changes, so old entries miss instead of lying


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
