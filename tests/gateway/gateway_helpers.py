"""What gateway tests share: the iris row, models that misbehave, and polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import shipyard as sy

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


class FlakyModel(sy.PythonModel):
    """Raises on about a fifth of its inputs: those whose first feature, in tenths, is 3 mod 5
    (none of the five rows of its input example)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, inputs: Any) -> Any:
        tenths = np.rint(np.asarray(inputs, dtype=float)[:, 0] * 10).astype(int)
        if (tenths % 5 == 3).any():  # like a real model, one bad row fails the whole call
            raise RuntimeError("flaky model failed on this input")
        return self.inner.predict(inputs)


class ShiftedModel(sy.PythonModel):
    """Always answers class 2: its class shares move far from the real model's (a third each
    on iris)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, inputs: Any) -> Any:
        return np.full(len(inputs), 2)


class DecimalModel(sy.PythonModel):
    """Answers Python Decimals, which JSON cannot hold: every answer is a failure."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, inputs: Any) -> Any:
        import decimal

        return [decimal.Decimal(int(v)) for v in self.inner.predict(inputs)]


class WrongLengthModel(sy.PythonModel):
    """Answers seven predictions whatever it is given."""

    def predict(self, inputs: Any) -> Any:
        return np.arange(7)


class CrashingModel(sy.PythonModel):
    """Ends its process when its first feature is 9.9 (no iris flower has that)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, inputs: Any) -> Any:
        import os

        if (np.asarray(inputs, dtype=float)[:, 0] == 9.9).any():
            os._exit(3)
        return self.inner.predict(inputs)


@dataclass
class Models:
    """Versions of "iris-clf": 1 and 2 good, 3 flaky, 4 shifted, 5 answers Decimals, 6 ends
    its process on a first feature of 9.9."""

    X: Any
    good: int = 1
    good2: int = 2
    flaky: int = 3
    shifted: int = 4
    decimal: int = 5
    crashing: int = 6


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "it") -> Any:
    """Poll ``condition`` until it is true, or fail naming what was waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Served:
    url: str
    gateway: Any
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.gateway.stop()


StartGateway = Callable[..., Served]
