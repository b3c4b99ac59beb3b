"""Loading a deployment's model version into the gateway, and warming it up before it takes
traffic.

A version is copied from the artifact store once (``materialize``), loaded by its flavor, and
asked for one prediction on an input built from its signature. Only then is it ready; one that
fails to load or to warm up is marked failed with the reason, and never receives a request.
How long the warm-up prediction took decides where predictions run: a fast model runs on the
event loop (a thread hop costs more than the prediction), a slow one in a worker thread so it
never holds up other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.artifacts.blobs import BlobStore
from shipyard.artifacts.folders import materialize
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.gateway.stats import Recorder
from shipyard.models.files import MANIFEST, LoadedModel
from shipyard.models.files import load_model as load_model_folder
from shipyard.models.signature import Signature
from shipyard.store.base import Store
from shipyard.store.entities import Deployment

# Predictions faster than this run on the event loop; slower ones in a thread.
INLINE_BELOW_S = 0.002


class Predictor:
    """What serves a deployment's predictions: the model in this process, or a worker."""

    signature: Signature | None
    classes: list[Any] | None
    flavor: str = ""
    example: Any = None  # input saved with the model, for the warm-up

    def predict(self, data: Any) -> Any:
        raise NotImplementedError

    async def apredict(self, data: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the predictor holds (a worker process)."""

    def alive(self) -> bool:
        """False once it can no longer answer (its worker process died)."""
        return True


class LocalPredictor(Predictor):
    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.signature = model.signature
        self.classes = model.classes
        self.flavor = model.info.flavor
        self.example = model.input_example
        self.inline = True

    def predict(self, data: Any) -> Any:
        # the input was enforced against the signature when the request was read
        return self.model.model.predict(data)

    async def apredict(self, data: Any) -> Any:
        if self.inline:
            return self.model.model.predict(data)
        return await asyncio.to_thread(self.model.model.predict, data)


@dataclass
class Served:
    """One deployment as this gateway holds it."""

    deployment: Deployment
    state: str = "loading"  # loading | ready | failed
    error: str = ""
    predictor: Predictor | None = None
    recorder: Recorder = field(default_factory=Recorder)
    warmup_ms: float | None = None
    # since the gateway started, for /metrics (the recorder resets every second)
    requests: int = 0
    errors: int = 0
    rejected: int = 0  # requests its signature refused (422)
    latency_total: float = 0.0
    output_datatype: str = "FP64"  # v2 datatype of its answers, seen at the warm-up

    def count(self, latency_s: float, error: bool) -> None:
        self.requests += 1
        self.errors += error
        self.latency_total += latency_s

    @property
    def id(self) -> int:
        return self.deployment.id

    @property
    def label(self) -> str:
        return self.deployment.label

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def signature(self) -> Signature | None:
        return self.predictor.signature if self.predictor is not None else None

    @property
    def flavor(self) -> str:
        return self.predictor.flavor if self.predictor is not None else ""

    def describe(self) -> dict[str, Any]:
        """What a heartbeat reports about it."""
        out: dict[str, Any] = {"model": self.label, "state": self.state}
        if self.error:
            out["error"] = self.error
        if self.warmup_ms is not None:
            out["warmup_ms"] = round(self.warmup_ms, 3)
        return out


Opener = Callable[[Deployment], Predictor]


def open_version(
    store: Store, blobs: BlobStore, name: str, version: int, *, trust: bool = False
) -> LocalPredictor:
    """A registered version loaded into this process."""
    found = store.get_model_version(name, version)
    folder = materialize(blobs, found.files, found.digest, found.uri, MANIFEST)
    try:
        model = load_model_folder(folder, trust=trust)
    except InvalidInput as exc:
        if "trust" in str(exc):
            raise InvalidInput(f"{exc} (start the gateway with --trust to serve it)") from None
        raise
    return LocalPredictor(model)


def local_opener(store: Store, blobs: BlobStore, *, trust: bool = False) -> Opener:
    """Load versions into this process."""

    def open_local(deployment: Deployment) -> Predictor:
        return open_version(
            store, blobs, deployment.model_name, deployment.model_version, trust=trust
        )

    return open_local


def load(served: Served, opener: Opener) -> None:
    """Load and warm up ``served`` (blocking: run it in a thread); sets its state.

    The warm-up predicts on the input example saved with the model: a model that cannot
    predict on its own example is broken and fails. A model saved without one is warmed up on
    a row of zeros built from its signature, which may be outside what it accepts, so an
    error there is noted but does not fail it.
    """
    try:
        predictor = opener(served.deployment)
    except ShipyardError as exc:
        served.state, served.error = "failed", exc.message
        return
    except BaseException as exc:  # a model's own code failed (even sys.exit): keep serving
        served.state, served.error = "failed", f"{type(exc).__name__}: {exc}"
        return
    example = predictor.example
    strict = example is not None
    if example is None:
        example = example_input(predictor.signature)
    try:
        if example is not None:
            elapsed = _warm_up(served, predictor, example)
            if isinstance(predictor, LocalPredictor):
                # the first call pays for lazy imports and caches; of the next few, the median
                # (one call alone is at the mercy of whatever else the machine is doing)
                elapsed = sorted(_timed(predictor, example) for _ in range(5))[2]
                predictor.inline = elapsed < INLINE_BELOW_S
            served.warmup_ms = elapsed * 1000
    except BaseException as exc:
        message = f"warm-up prediction failed: {type(exc).__name__}: {exc}"
        if strict:
            predictor.close()
            served.state, served.error = "failed", message
            return
        served.error = message + " (on a row of zeros: serving anyway)"
    served.predictor = predictor
    served.state = "ready"


def _warm_up(served: Served, predictor: Predictor, example: Any) -> float:
    """Time one prediction on the example; check it answers one prediction per row, and
    note what type its answers are (the v2 metadata says so)."""
    import numpy as np

    from shipyard.gateway.protocols import v2_datatype

    started = time.perf_counter()
    outputs = predictor.predict(example)
    elapsed = time.perf_counter() - started
    if (
        not isinstance(outputs, (dict, str, bytes))
        and hasattr(outputs, "__len__")
        and len(outputs) != len(example)
    ):
        raise InvalidInput(
            f"it returned {len(outputs)} predictions for the example's {len(example)} rows"
        )
    with contextlib.suppress(ValueError, TypeError):  # ragged answers: keep the default
        served.output_datatype = v2_datatype(np.asarray(outputs).dtype.name)
    return elapsed


def _timed(predictor: Predictor, example: Any) -> float:
    started = time.perf_counter()
    predictor.predict(example)
    return time.perf_counter() - started


def example_input(signature: Signature | None) -> Any:
    """One row the signature accepts (all of its columns), or None without a signature."""
    return None if signature is None else signature.examples()[-1]
