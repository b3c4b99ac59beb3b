"""Fixtures for CLI tests: a fresh store per test and a runner that goes through main()."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli.main import main


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def json(self) -> Any:
        return json.loads(self.stdout)


Invoke = Callable[..., Result]


@pytest.fixture
def cli(tracking, monkeypatch) -> Invoke:  # type: ignore[no-untyped-def]
    """Run `shipyard ARGS...` in-process through main(), the way the console script does."""
    monkeypatch.setenv("SHIPYARD_CAPTURE", "false")
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that Rich tables are not truncated

    def invoke(*args: str) -> Result:
        tracking.writer.flush()  # everything logged through the Python API is stored
        runner = CliRunner()
        # --uri/--artifacts write these variables; the isolation puts them back afterwards.
        keep = {k: os.environ.get(k) for k in ("SHIPYARD_URI", "SHIPYARD_ARTIFACTS")}
        with runner.isolation(env=keep) as (out, err, _):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            raw, error = out.getvalue(), err.getvalue()
        return Result(code, raw.decode("utf-8", "replace"), error.decode(), raw)

    return invoke


@pytest.fixture
def db(tracking):  # type: ignore[no-untyped-def]
    """The store the CLI reads (the same one the Python API writes to)."""
    return tracking.store
