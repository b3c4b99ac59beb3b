"""Running the gateway: uvicorn on a socket bound before it starts, so ``--port 0`` works and
the address printed is the one that answers."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

from shipyard.errors import InvalidInput, require
from shipyard.gateway.core import Gateway
from shipyard.tracking.tracker import get_tracker

SWITCH_INTERVAL_S = 0.001


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one)."""
    if not 0 <= port <= 65535:
        raise InvalidInput(f"cannot listen on port {port}: a port is 0 to 65535 (0: any free)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, UnicodeError) as exc:
        sock.close()
        why = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInput(f"cannot listen on {host}:{port}: {why}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    trust: bool = False,
    isolated: bool = False,
    max_body: int = 10 * 1024 * 1024,
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve every endpoint in the configured store until interrupted."""
    require("uvicorn", "gateway")
    require("starlette", "gateway")
    import uvicorn

    from shipyard.gateway.app import create_app

    # Background threads (prediction logs, shadow, store sync) hold the GIL in slices; the
    # event loop answering requests waits for a slice to end, 5 ms by default. Shorter slices
    # keep the background's cost off the answers' tail latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    tracker = get_tracker()
    sock = bind(host, port)
    address = "{}:{}".format(*sock.getsockname()[:2])
    opener = None
    if isolated:
        from shipyard.gateway.isolated import isolated_opener

        opener = isolated_opener(tracker.uri, tracker.artifact_root, trust=trust)
    gateway = Gateway(
        tracker.store, tracker.blobs, address=address, trust=trust, opener=opener, max_body=max_body
    )
    gateway.start()
    config = uvicorn.Config(
        create_app(gateway),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    (announce or _print)(f"http://{address}")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it shut down on: for a server, that is a normal stop
    finally:
        gateway.stop()
        sock.close()


def _print(url: str) -> None:
    print(f"shipyard gateway listening on {url}", flush=True)
    sys.stdout.flush()
