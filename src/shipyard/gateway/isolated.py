"""``shipyard gateway --isolated``: each model version runs in its own worker process.

A model that leaks memory, crashes the interpreter or holds the GIL for long then harms only
itself. The gateway still reads and checks every request (so a bad one is refused without
bothering the worker) and sends the worker the input it built, pickled (both ends are this
program; nothing from a client is unpickled); the worker predicts and sends the answer back.
They talk HTTP over loopback with keep-alive connections.

The worker prints ``ready PORT`` once its model is loaded and warm; a worker that exits or
stays silent for ``START_TIMEOUT_S`` fails the deployment with what it printed on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import pickle
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.gateway.loading import Opener, Predictor
from shipyard.models.signature import Signature
from shipyard.store.entities import Deployment

START_TIMEOUT_S = 120.0
PREDICT_TIMEOUT_S = 60.0  # a worker silent for this long on one request is replaced
TOKEN_ENV = "SHIPYARD_WORKER_TOKEN"
TOKEN_HEADER = "x-shipyard-worker-token"


class WorkerError(ShipyardError):
    """The worker process answered with an error, or not at all."""


class IsolatedPredictor(Predictor):
    def __init__(
        self, process: subprocess.Popen[bytes], port: int, info: dict[str, Any], token: str
    ) -> None:
        import httpx

        self.process = process
        self._headers = {TOKEN_HEADER: token}
        self.url = f"http://127.0.0.1:{port}/predict"
        sig = info.get("signature")
        self.signature = Signature.from_dict(sig) if sig else None
        self.classes = info.get("classes")
        self.drain: threading.Thread | None = None
        self.flavor = str(info.get("flavor", ""))
        self._client = httpx.Client(
            timeout=httpx.Timeout(PREDICT_TIMEOUT_S, connect=10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def predict(self, data: Any) -> Any:
        import httpx

        try:
            response = self._client.post(
                self.url, content=pickle.dumps(data, protocol=5), headers=self._headers
            )
        except httpx.TimeoutException:
            # a worker that does not answer in time is treated as lost: it is replaced
            self.process.kill()
            self.process.wait(timeout=10)
            raise WorkerError(
                f"the model's worker process did not answer within {PREDICT_TIMEOUT_S:g}s"
            ) from None
        except httpx.HTTPError as exc:
            # a worker that died closes its socket a moment before it can be reaped: give it
            # that moment, so that alive() tells the truth to whoever handles this error
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)
            raise WorkerError(f"the model's worker process did not answer: {exc}") from None
        return self._answer(response)

    async def apredict(self, data: Any) -> Any:
        # a thread, not an async client: a pool bound to the server's event loop would
        # outlive it at shutdown, and the hop costs little next to the round trip
        return await asyncio.to_thread(self.predict, data)

    def alive(self) -> bool:
        return self.process.poll() is None

    def _answer(self, response: Any) -> Any:
        if response.status_code != 200:
            raise WorkerError(response.text)
        return pickle.loads(response.content)  # made by our own worker

    def close(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.drain is not None:
            self.drain.join(timeout=5)  # stderr reaches its end once the process is gone
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def isolated_opener(uri: str, artifacts: str, *, trust: bool = False) -> Opener:
    """Start a worker process per version."""

    def open_isolated(deployment: Deployment) -> Predictor:
        command = [
            sys.executable,
            "-m",
            "shipyard.gateway.isolated",
            "--uri",
            uri,
            "--artifacts",
            artifacts,
            "--model",
            deployment.label,
        ]
        if trust:
            command.append("--trust")
        # only this gateway may call the worker: its port is open to every local user, and
        # what it receives is unpickled
        token = secrets.token_hex(16)
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: token},
        )
        line = _ready_line(process, START_TIMEOUT_S)
        if not line.startswith("ready "):
            process.kill()
            _, err = process.communicate(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise WorkerError(f"the worker process for {deployment.label} failed: {tail[0]}")
        _, port, info = line.split(" ", 2)
        predictor = IsolatedPredictor(process, int(port), json.loads(info), token)
        predictor.drain = threading.Thread(target=_drain, args=(process,), daemon=True)
        predictor.drain.start()
        return predictor

    return open_isolated


def _ready_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The worker's ``ready PORT INFO`` line; what a model printed before it is passed on."""
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace")
            if line.startswith("ready "):
                found.append(line.strip())
                return
            sys.stderr.write(f"[worker {process.pid}] {line}")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


def _drain(process: subprocess.Popen[bytes]) -> None:
    # a worker's stderr goes on being read, so that it never blocks on a full pipe
    assert process.stderr is not None
    for line in process.stderr:
        sys.stderr.write(f"[worker {process.pid}] {line.decode(errors='replace')}")


# -- the worker process ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shipyard.gateway.isolated")
    parser.add_argument("--uri", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--model", required=True, help="NAME/VERSION")
    parser.add_argument("--trust", action="store_true")
    args = parser.parse_args(argv)

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from shipyard.gateway.loading import open_version
    from shipyard.gateway.server import bind
    from shipyard.tracking.tracker import get_tracker

    tracker = get_tracker(args.uri, args.artifacts)
    name, _, version = args.model.rpartition("/")
    try:
        predictor = open_version(tracker.store, tracker.blobs, name, int(version), trust=args.trust)
        if predictor.example is not None:  # the zeros fallback is the gateway's to judge
            predictor.predict(predictor.example)
    except ShipyardError as exc:
        print(exc.message, file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as exc:  # the model's own code: say what, in one line
        print(f"warm-up failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()

    token = os.environ.get(TOKEN_ENV, "")

    async def predict(request: Request) -> Response:
        if not token or not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return Response("not the gateway that started this worker", status_code=403)
        data = pickle.loads(await request.body())  # sent by the gateway that started us
        try:
            outputs = predictor.predict(data)
        except Exception as exc:
            return Response(f"{type(exc).__name__}: {exc}", status_code=500)
        return Response(pickle.dumps(outputs, protocol=5))

    sock = bind("127.0.0.1", 0)
    info = {
        "signature": predictor.signature.to_dict() if predictor.signature else None,
        "classes": [c.item() if hasattr(c, "item") else c for c in predictor.classes or []] or None,
        "flavor": predictor.flavor,
        "pid": os.getpid(),
        "started": time.time(),
    }
    print(f"ready {sock.getsockname()[1]} {json.dumps(info)}", flush=True)
    # from here on nobody reads stdout: what the model prints goes to stderr, which the
    # gateway drains, so a chatty model never blocks on a full pipe
    os.dup2(2, 1)
    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def _exit_with(parent: int) -> None:
    # a worker whose gateway died (even by SIGKILL) must not live on holding its model
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    main()
