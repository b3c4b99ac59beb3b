"""Shipyard's inference gateway beside `mlflow models serve`, side by side in one run.

    .venv/bin/python benchmarks/gateway.py            # full: 5 rounds of 10 s per system, ~6.5 min
    .venv/bin/python benchmarks/gateway.py --quick    # smoke run, about a minute
    .venv/bin/python benchmarks/gateway.py --json --skip-mlflow
    .venv/bin/python benchmarks/gateway.py --profile /tmp/gateway-profile   # + py-spy under load

Every server runs in its own process on loopback and is stopped at the end, Ctrl-C included:
the gateway (`shipyard gateway`, this venv) on a fresh store in a temporary folder, MLflow's
scoring server (`mlflow models serve`, its own venv .bench/mlflow) on the same fitted model,
and a trivial server that gives the load generator's ceiling. The load generator
(benchmarks/_gateway_load.py) is a separate process. One measurement at a time; the systems
take turns in every round. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _gateway_profile import py_spy, record, summarize
from rich.console import Console
from rich.table import Table

from models import mlflow_python
from tracking import QUIET_MLFLOW, fmt, git_state, log, ok, run_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OVERHEAD_TARGET_MS = 1.0  # HTTP p50 minus in-process predict p50, one row
THROUGHPUT_TARGET = 3.0  # the gateway's req/s / MLflow's
MIXED_TARGET = 0.9  # canary + shadow req/s / plain req/s
P99_MIN_NOISE = 0.10  # the primary's p99 "within noise": at least this share of plain's p99


@dataclass(frozen=True)
class Sizes:
    rounds: int  # each system is measured once per round; medians over rounds
    duration_s: float  # timed load per system per round
    warmup_s: float  # untimed load just before, on the same connections
    connections: int  # concurrent keep-alive connections
    seq_n: int  # sequential requests per server per round (after 100 untimed)
    inproc_n: int  # in-process calls of each function per round
    ceiling_s: float  # the generator against the trivial server
    first_warmup_s: float  # load on each server once at the start (lazy imports, caches)
    profile_s: float  # --profile: sampling time per case


FULL = Sizes(5, 10.0, 2.0, 8, 2000, 5000, 5.0, 3.0, 15.0)
QUICK = Sizes(1, 3.0, 1.0, 8, 300, 1000, 2.0, 1.0, 5.0)


# -- servers -------------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process in its own session, so that it and its children stop together."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path else []
        return "\n".join(lines[-15:])


class Servers:
    """Starts servers and stops every one of them when the block ends, however it ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Server] = []

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in reversed(self.started):
            log.print(f"stopping {server.name} (pid {server.proc.pid})")
            server.stop()

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path) -> Server:
        log_path = self.folder / f"{name}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(name, proc, log_path)
        self.started.append(server)
        return server


def wait_for(what: str, check: Any, server: Server, timeout: float = 120.0) -> Any:
    """Poll ``check()`` until it returns something true; fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited while {what}:\n{server.tail()}")
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: timed out {what}:\n{server.tail()}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def announced(server: Server, pattern: str) -> str | None:
    match = re.search(pattern, server.log_path.read_text(errors="replace"))
    return match.group(1) if match else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(servers: Servers, env: dict[str, str], folder: Path) -> Server:
    cmd = [str(Path(sys.executable).parent / "shipyard"), "gateway", "--host", "127.0.0.1"]
    server = servers.start("gateway", [*cmd, "--port", "0"], env, folder)
    server.url = wait_for(
        "announcing its address",
        lambda: announced(server, r"listening on (http://\S+)"),
        server,
    )

    def mixed_ready() -> bool:
        # every endpoint loaded, and on the mixed one the canary at 10% and the shadow serving
        if get(f"{server.url}/readyz")[0] != 200:
            return False
        status, body = get(f"{server.url}/endpoints/iris-mixed")
        if status != 200:
            return False
        deployments = json.loads(body)["deployments"]
        return all(d["serving"] for d in deployments) and any(
            d["role"] == "canary" and d["weight"] > 0 for d in deployments
        )

    wait_for("loading its endpoints", mixed_ready, server)
    return server


def start_mlflow(
    servers: Servers, python: Path, model_uri: str, tracking: str, folder: Path
) -> Server:
    port = free_port()
    bin_dir = python.parent
    # `mlflow models serve --env-manager local` runs uvicorn through the shell: its venv first
    env = {
        **os.environ,
        **QUIET_MLFLOW,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking,
    }
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port)]
    server = servers.start("mlflow", cmd, env, folder)
    server.url = f"http://127.0.0.1:{port}"
    wait_for("starting", lambda: get(f"{server.url}/ping")[0] == 200, server)
    return server


def start_echo(servers: Servers, folder: Path) -> Server:
    server = servers.start(
        "echo", [sys.executable, str(HERE / "_gateway_echo.py")], dict(os.environ), folder
    )
    server.url = wait_for(
        "announcing its address", lambda: announced(server, r"listening on (http://\S+)"), server
    )
    return server


# -- measuring -----------------------------------------------------------------------------------


def load(server: Server, path: str, body: str, sizes: Sizes, **extra: Any) -> dict[str, Any]:
    """One closed-loop load run against ``server`` (the generator in its own process)."""
    plan = {
        "mode": "run",
        "url": server.url + path,
        "body": body,
        "connections": sizes.connections,
        "warmup_s": sizes.warmup_s,
        "duration_s": sizes.duration_s,
        "watch_pid": server.proc.pid,
        **extra,
    }
    result = run_json(
        [sys.executable, str(HERE / "_gateway_load.py"), json.dumps(plan)], dict(os.environ), HERE
    )
    result["load_before"] = os.getloadavg()[0]
    shown = {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "statuses", "error")}
    log.print(f"  {server.name}{path}: {shown}")
    return result


def sequential(server: Server, path: str, body: str, n: int) -> dict[str, Any]:
    plan = {"mode": "seq", "url": server.url + path, "body": body, "n": n, "warmup": 100}
    result = run_json(
        [sys.executable, str(HERE / "_gateway_load.py"), json.dumps(plan)], dict(os.environ), HERE
    )
    log.print(f"  sequential {server.name}{path}: p50 {result.get('p50_ms')} ms")
    return result


def inproc(env: dict[str, str], n: int) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "_gateway_shipyard.py"), "inproc", json.dumps({"n": n})]
    result = run_json(cmd, env, ROOT)
    log.print(f"  in process: {result}")
    return result


def metrics(server: Server) -> dict[str, float]:
    """The gateway's Prometheus counters, as {"name{labels}": value}."""
    status, body = get(f"{server.url}/metrics")
    out = {}
    for line in body.decode(errors="replace").splitlines() if status == 200 else []:
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


@dataclass
class Systems:
    """What is measured under load each round: (key, server, path)."""

    items: list[tuple[str, Server, str]] = field(default_factory=list)

    def order(self, round_: int) -> list[tuple[str, Server, str]]:
        shift = round_ % len(self.items)
        return self.items[shift:] + self.items[:shift]


def measure(args: argparse.Namespace, sizes: Sizes, folder: Path) -> dict[str, Any]:
    """Set up, start every server, then the rounds; the raw figures."""
    raw: dict[str, Any] = {"notes": [], "rounds": [], "load_average_before": os.getloadavg()}
    env = {
        **os.environ,
        "SHIPYARD_URI": f"sqlite:///{folder}/shipyard.db",
        "SHIPYARD_ARTIFACTS": f"{folder}/artifacts",
        "SHIPYARD_CAPTURE": "false",  # run capture plays no part in serving
    }
    log.print("[bold]setup[/]: fitting, registering iris-clf/1..3, creating the endpoints")
    cmd = [
        sys.executable,
        str(HERE / "_gateway_shipyard.py"),
        "setup",
        json.dumps({"folder": str(folder)}),
    ]
    setup = run_json(cmd, env, ROOT)
    if "error" in setup:
        raise RuntimeError(f"setup failed: {setup['error']}")
    raw["setup"] = setup
    split, columns = setup["payloads"]["dataframe_split"], setup["payloads"]["shipyard_columns"]

    python, why = mlflow_python(args)
    mlflow_model = None
    if python is None:
        raw["notes"].append(f"MLflow {why}")
    else:
        mlflow_folder = folder / "mlflow"
        mlflow_folder.mkdir()
        cmd = [
            str(python),
            str(HERE / "_gateway_mlflow.py"),
            json.dumps({"model": str(folder / "model.pkl")}),
        ]
        mlflow_model = run_json(cmd, {**os.environ, **QUIET_MLFLOW}, mlflow_folder)
        if "error" in mlflow_model:
            raw["notes"].append(f"MLflow could not log the model: {mlflow_model['error']}")
            mlflow_model = None
        raw["mlflow_model"] = mlflow_model

    with Servers(folder) as servers:
        log.print("[bold]starting[/] the servers")
        echo = start_echo(servers, folder)
        gateway = start_gateway(servers, env, folder)
        mlflow = None
        if mlflow_model is not None:
            assert python is not None
            mlflow = start_mlflow(
                servers,
                python,
                mlflow_model["model_uri"],
                mlflow_model["tracking_uri"],
                folder / "mlflow",
            )
        systems = Systems(
            [
                ("gateway", gateway, "/endpoints/iris/invocations"),
                ("mixed", gateway, "/endpoints/iris-mixed/invocations"),
                ("nolog", gateway, "/endpoints/iris-nolog/invocations"),
            ]
        )
        if mlflow is not None:
            systems.items.insert(0, ("mlflow", mlflow, "/invocations"))

        log.print("[bold]warming up[/] every server")
        first = Sizes(**{**asdict(sizes), "warmup_s": 0.0, "duration_s": sizes.first_warmup_s})
        for _, server, path in systems.items:
            load(server, path, split, first)
        raw["ceiling"] = {
            client: load(
                echo,
                "/invocations",
                split,
                Sizes(**{**asdict(sizes), "duration_s": sizes.ceiling_s}),
                client=client,
            )
            for client in ("raw", "httpx")
        }

        for r in range(sizes.rounds):
            log.print(f"[bold]round {r + 1}/{sizes.rounds}[/] (load {os.getloadavg()[0]:.2f})")
            figures: dict[str, Any] = {"load_before": os.getloadavg()}
            for key, server, path in systems.order(r):
                figures[key] = load(server, path, split, sizes)
            figures["inproc"] = inproc(env, sizes.inproc_n)
            figures["seq_gateway_predict"] = sequential(
                gateway, "/endpoints/iris/predict", columns, sizes.seq_n
            )
            figures["seq_gateway_invocations"] = sequential(
                gateway, "/endpoints/iris/invocations", split, sizes.seq_n
            )
            if mlflow is not None:
                figures["seq_mlflow"] = sequential(mlflow, "/invocations", split, sizes.seq_n)
            figures["seq_echo"] = sequential(echo, "/invocations", split, sizes.seq_n)
            figures["load_after"] = os.getloadavg()
            raw["rounds"].append(figures)
        raw["metrics"] = metrics(gateway)
        cmd = [sys.executable, str(HERE / "_gateway_shipyard.py"), "served", "{}"]
        raw["served"] = run_json(cmd, env, ROOT)

        if args.profile:
            raw["profile"] = profile(args.profile, gateway, split, sizes)
    raw["load_average_after"] = os.getloadavg()
    return raw


def profile(out: Path, gateway: Server, body: str, sizes: Sizes) -> dict[str, Any]:
    """py-spy on the gateway while the plain and the mixed endpoints take load, one at a time."""
    out.mkdir(parents=True, exist_ok=True)
    found = {}
    for key, path in (
        ("gateway", "/endpoints/iris/invocations"),
        ("mixed", "/endpoints/iris-mixed/invocations"),
    ):
        for gil in (False, True):
            name = f"{key}{'-gil' if gil else ''}"
            log.print(f"[bold]profiling[/] the gateway under load on {path} ({name})")
            target = out / f"{name}.txt"
            spy = record(gateway.proc.pid, sizes.profile_s, target, gil=gil)
            time.sleep(0.5)  # py-spy attaches
            load(
                gateway,
                path,
                body,
                Sizes(**{**asdict(sizes), "warmup_s": 0.0, "duration_s": sizes.profile_s}),
            )
            spy.wait(timeout=60)
            found[name] = summarize(target) | {"file": str(target)}
    return found


# -- turning figures into rows -------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    shipyard: str
    peer: str = "-"
    ratio: str = "-"  # how many times better Shipyard is, or the named ratio
    target: str = "-"
    verdict: str = "-"


def med(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def figure(raw: dict, key: str, name: str) -> list[float | None]:
    """``name`` from measurement ``key`` in every round (None where it failed)."""
    return [
        r.get(key, {}).get(name) if "error" not in r.get(key, {}) else None for r in raw["rounds"]
    ]


def primary_p99(result: dict) -> float | None:
    by = result.get("by_version") or {}
    primary = by.get("iris-clf/1")
    return primary["p99_ms"] if primary else None


def ms(value: float | None, digits: int = 2) -> str:
    return fmt(value, f"{{:,.{digits}f}} ms")


def rate(value: float | None) -> str:
    return fmt(value, "{:,.0f} req/s")


def times(value: float | None) -> str:
    return fmt(value, "{:.2f}x")


def spread(values: list[float | None], spec: str) -> str:
    return ", ".join(spec.format(v) if v is not None else "-" for v in values)


def overhead_rows(raw: dict) -> list[Row]:
    """Target 1: one request over HTTP against the same predict in process, p50."""
    http = figure(raw, "seq_gateway_predict", "p50_ms")
    ours = figure(raw, "inproc", "shipyard_predict_p50_ms")
    sk = figure(raw, "inproc", "sklearn_predict_p50_ms")
    pairs = [(h, o, s) for h, o, s in zip(http, ours, sk, strict=True) if None not in (h, o, s)]
    if not pairs:
        return [Row("gateway overhead", "no figures (see stderr)")]
    over_ours = statistics.median(h - o for h, o, _ in pairs)  # type: ignore[operator]
    over_sk = statistics.median(h - s for h, _, s in pairs)  # type: ignore[operator]
    http_p50, ours_p50, sk_p50 = med(http), med(ours), med(sk)
    inv = med(figure(raw, "seq_gateway_invocations", "p50_ms"))
    mlflow = med(figure(raw, "seq_mlflow", "p50_ms"))
    echo = med(figure(raw, "seq_echo", "p50_ms"))
    rows = [
        Row(
            "gateway overhead over shipyard.load_model(...).predict, p50",
            f"{over_ours:+.2f} ms ({http_p50:.2f} HTTP - {ours_p50:.2f})",
            "-",
            "-",
            f"≤ {OVERHEAD_TARGET_MS:g} ms",
            ok(over_ours <= OVERHEAD_TARGET_MS),
        ),
        Row(
            "gateway overhead over scikit-learn's own predict, p50",
            f"{over_sk:+.2f} ms ({http_p50:.2f} HTTP - {sk_p50:.2f})",
            "-",
            "-",
            f"≤ {OVERHEAD_TARGET_MS:g} ms",
            ok(over_sk <= OVERHEAD_TARGET_MS),
        ),
        Row("  per round: overhead over sklearn", spread([h - s for h, _, s in pairs], "{:.2f}")),  # type: ignore[operator]
        Row(
            "  one request at a time, /predict (Shipyard JSON), p50 / p99",
            f"{ms(http_p50)} / {ms(med(figure(raw, 'seq_gateway_predict', 'p99_ms')))}",
        ),
        Row(
            "  one request at a time, /invocations (dataframe_split), p50 / p99",
            f"{ms(inv)} / {ms(med(figure(raw, 'seq_gateway_invocations', 'p99_ms')))}",
            f"{ms(mlflow)} / {ms(med(figure(raw, 'seq_mlflow', 'p99_ms')))}" if mlflow else "-",
            times(mlflow / inv if mlflow and inv else None),
        ),
        Row("  HTTP floor: the generator against the trivial server, p50", ms(echo, 3)),
        Row(
            "  in process: the gateway's parse of the body; its encoding of the answer",
            f"{ms(med(figure(raw, 'inproc', 'parse_dataframe_split_p50_ms')), 3)}; "
            f"{ms(med(figure(raw, 'inproc', 'encode_answer_p50_ms')), 3)}",
        ),
    ]
    return rows


def throughput_rows(raw: dict, sizes: Sizes) -> list[Row]:
    """Target 2: req/s with 8 connections, against MLflow on the same load."""
    ours = figure(raw, "gateway", "rps")
    theirs = figure(raw, "mlflow", "rps")
    ours_rps, theirs_rps = med(ours), med(theirs)
    ratio = ours_rps / theirs_rps if ours_rps and theirs_rps else None
    per_round = [o / t if o and t else None for o, t in zip(ours, theirs, strict=True)]
    rows = [
        Row(
            f"throughput, {sizes.connections} connections, /invocations, 1 row",
            rate(ours_rps),
            rate(theirs_rps) + " mlflow models serve" if theirs_rps else "-",
            times(ratio),
            f"≥ {THROUGHPUT_TARGET:g}x",
            ok(ratio >= THROUGHPUT_TARGET) if ratio else "-",
        ),
        Row(
            "  per round: gateway req/s; ratio",
            spread(ours, "{:,.0f}"),
            spread(theirs, "{:,.0f}"),
            spread(per_round, "{:.2f}x"),
        ),
        Row(
            "  latency under that load, p50 / p99",
            p50_p99(raw, "gateway"),
            p50_p99(raw, "mlflow"),
        ),
        Row(
            "  server CPU per request (all its threads)",
            cpu_per_request(raw, "gateway"),
            cpu_per_request(raw, "mlflow"),
        ),
    ]
    nolog = med(figure(raw, "nolog", "rps"))
    rows.append(
        Row(
            "  the same with prediction logs off (log_sample=0)",
            f"{rate(nolog)}, {cpu_per_request(raw, 'nolog')}",
            rate(theirs_rps),
            times(nolog / theirs_rps if nolog and theirs_rps else None),
        )
    )
    ceiling = raw.get("ceiling", {})
    raw_c, httpx_c = ceiling.get("raw", {}), ceiling.get("httpx", {})
    rows.append(
        Row(
            "  load generator's ceiling (trivial server): raw asyncio; httpx",
            f"{rate(raw_c.get('rps'))}; {rate(httpx_c.get('rps'))}",
        )
    )
    return rows


def p50_p99(raw: dict, key: str) -> str:
    return f"{ms(med(figure(raw, key, 'p50_ms')))} / {ms(med(figure(raw, key, 'p99_ms')))}"


def cpu_per_request(raw: dict, key: str) -> str:
    values = [
        r[key]["server_cpu_s"] / r[key]["ok"] * 1e6
        for r in raw["rounds"]
        if key in r and r[key].get("server_cpu_s") is not None and r[key].get("ok")
    ]
    return f"{statistics.median(values):,.0f} µs" if values else "-"


def mixed_rows(raw: dict) -> list[Row]:
    """Target 3: a 10% canary and a shadow against the plain endpoint."""
    plain, mixed = figure(raw, "gateway", "rps"), figure(raw, "mixed", "rps")
    plain_rps, mixed_rps = med(plain), med(mixed)
    ratio = mixed_rps / plain_rps if mixed_rps and plain_rps else None
    plain_p99 = figure(raw, "gateway", "p99_ms")
    primary = [
        primary_p99(r["mixed"]) if "mixed" in r and "error" not in r["mixed"] else None
        for r in raw["rounds"]
    ]
    plain_med, primary_med = med(plain_p99), med(primary)
    kept = [v for v in plain_p99 if v is not None]
    noise = max(max(kept) - min(kept), P99_MIN_NOISE * plain_med) if kept and plain_med else None
    within = None if noise is None or primary_med is None else abs(primary_med - plain_med) <= noise
    canary = [
        r["mixed"]["by_version"].get("iris-clf/2", {}).get("n", 0) / r["mixed"]["ok"]
        for r in raw["rounds"]
        if "mixed" in r and r["mixed"].get("ok")
    ]
    m = raw.get("metrics", {})
    dropped = m.get("shipyard_shadow_dropped_total")
    answered = sum(
        v
        for k, v in m.items()
        if k.startswith("shipyard_requests_total{") and 'endpoint="iris-mixed"' in k
    )
    return [
        Row(
            "canary (10%) + shadow vs plain endpoint, req/s",
            f"{rate(mixed_rps)} vs {rate(plain_rps)}",
            "-",
            times(ratio),
            f"≥ {MIXED_TARGET:g}x",
            ok(ratio >= MIXED_TARGET) if ratio else "-",
        ),
        Row(
            "  per round: canary + shadow; plain",
            spread(mixed, "{:,.0f}") + "; " + spread(plain, "{:,.0f}"),
        ),
        Row(
            "primary's p99 with canary + shadow vs plain",
            f"{ms(primary_med)} vs {ms(plain_med)}",
            "-",
            times(plain_med / primary_med if plain_med and primary_med else None),
            "within noise" + (f" (±{noise:.2f} ms)" if noise else ""),
            ok(within) if within is not None else "-",
        ),
        Row(
            "  per round: primary p99 mixed; plain p99",
            spread(primary, "{:.2f}") + "; " + spread(plain_p99, "{:.2f}"),
        ),
        Row(
            "  canary's share of answers (x-shipyard-model-version)",
            spread([c * 100 for c in canary], "{:.1f}%"),
        ),
        Row(
            "  shadow copies dropped (queue full), of requests answered",
            "-"
            if dropped is None
            else f"{dropped:,.0f} of {answered:,.0f} ({dropped / answered:.0%})"
            if answered
            else f"{dropped:,.0f}",
        ),
    ]


def served_rows(raw: dict) -> list[Row]:
    """Where each endpoint's deployments predict: the event loop, or a thread (loading.py
    decides it from one timed warm-up call: inline below 2 ms)."""
    found = (raw.get("served") or {}).get("deployments") or {}
    if not found:
        return []
    parts = []
    for info in sorted(found.values(), key=lambda d: (str(d["endpoint"]), str(d["role"]))):
        where = {True: "event loop", False: "THREAD", None: "?"}[info["inline"]]
        warm = info["warmup_ms"]
        parts.append(
            f"{info['endpoint']} {info['role']}: {where}"
            + ("" if warm is None else f" ({warm:.2f} ms)")
        )
    return [Row("where predictions run (warm-up call)", "; ".join(parts))]


def notes(raw: dict, sizes: Sizes) -> list[str]:
    out = [
        f"{sizes.rounds} round(s); in each, every system takes {sizes.warmup_s:g} s of untimed "
        f"then {sizes.duration_s:g} s of timed load from {sizes.connections} keep-alive "
        "connections (a closed loop: each sends its next request when the answer arrives), the "
        "systems in turn (the order rotates every round); then the in-process and sequential "
        f"figures ({sizes.seq_n:,} requests, {sizes.inproc_n:,} calls). Medians over rounds; "
        "overhead = median over rounds of (HTTP p50 - in-process p50) from the same round.",
        "Model: LogisticRegression on load_iris (150 rows x 4 features, shipped with "
        "scikit-learn), so that the servers, not the model, are measured; one row per request. "
        "iris-clf/1 serves everywhere, pickled and logged to MLflow with mlflow.sklearn.log_model "
        "so both hold the same coefficients; iris-clf/2 (C=0.5) is the canary, iris-clf/3 (C=2) "
        "the shadow.",
        "Gateway: `shipyard gateway`, defaults (uvicorn with uvloop and httptools, one process, "
        "prediction logs on every request); MLflow: `mlflow models serve --env-manager local`, "
        "defaults (one uvicorn worker, h11: its venv has neither uvloop nor httptools).",
    ]
    setup = raw.get("setup", {})
    if setup:
        out.append(
            "Canary + shadow (endpoint iris-mixed): the shadow was started as a shadow rollout, "
            "whose rollout was then ended by Store.update_rollout without a role change, so the "
            "deployment stays a shadow; then `deploy --strategy canary --steps 10,100 --interval "
            "24h --min-requests 1e9`: the gateway's controller put it at 10% and judges it every "
            "second, but never moves it."
        )
    mlflow_model = raw.get("mlflow_model") or {}
    if mlflow_model:
        out.append(f"MLflow {mlflow_model['mlflow']}, scikit-learn {mlflow_model['sklearn']}.")
    for name, found in (raw.get("profile") or {}).items():
        threads = ", ".join(f"{k} {v}%" for k, v in found["threads_pct"].items())
        top = ", ".join(f"{k} {v}%" for k, v in list(found["focus_pct"].items())[:12])
        kind = "samples holding the GIL" if name.endswith("-gil") else "wall-clock samples"
        out.append(
            f"profile {name} ({found['samples']} {kind}, {found['file']}): by thread: "
            f"{threads}; inclusive: {top}"
        )
    return out + raw["notes"]


# -- output --------------------------------------------------------------------------------------


def print_table(rows: list[Row], notes: list[str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("figure", "Shipyard", "peer", "ratio", "target", "verdict"):
        table.add_column(name, justify="left" if name in ("figure", "peer", "verdict") else "right")
    for row in rows:
        table.add_row(*asdict(row).values(), style="red" if "MISS" in row.verdict else None)
    console = Console(width=None if sys.stdout.isatty() else 190)
    console.print(table)
    console.print(
        "ratio: how many times better Shipyard is (req/s: Shipyard's / MLflow's; latency: "
        "MLflow's / Shipyard's); for canary + shadow, its req/s / the plain endpoint's, and the "
        "plain p99 / the primary's."
    )
    for note in notes:
        console.print(f"- {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Shipyard's gateway beside mlflow models serve.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-mlflow", action="store_true", help="Shipyard's figures only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="then py-spy the gateway under load into DIR"
    )
    args = parser.parse_args(argv)
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    sizes = QUICK if args.quick else FULL
    # a `kill` of this script stops the servers as Ctrl-C does, also when started in the
    # background (where a shell leaves SIGINT ignored)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-gateway-bench-") as tmp:
            raw = measure(args, sizes, Path(tmp))
    except KeyboardInterrupt:
        log.print("interrupted: every server was stopped")
        return 130
    rows = overhead_rows(raw) + throughput_rows(raw, sizes) + mixed_rows(raw) + served_rows(raw)
    all_notes = notes(raw, sizes)
    meta = {
        "date": datetime.date.today().isoformat(),
        "shipyard_commit": git_state(),
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average_before": raw["load_average_before"],
        "load_average_after": raw["load_average_after"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        out = {**meta, "sizes": asdict(sizes), "rows": [asdict(r) for r in rows]}
        print(json.dumps({**out, "notes": all_notes, "raw": raw}, indent=2))
    else:
        before, after = meta["load_average_before"][0], meta["load_average_after"][0]
        print_table(
            rows,
            all_notes,
            f"Shipyard gateway vs mlflow models serve, {meta['date']}, {meta['mode']} run, "
            f"{meta['seconds']} s, load {before:.2f} before, {after:.2f} after",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
