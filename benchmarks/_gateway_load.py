"""The load generator of benchmarks/gateway.py: keep-alive HTTP/1.1 POSTs, in its own process.

Usage: python _gateway_load.py '{"mode": "run", "url": ..., "body": ..., ...}'  ->  JSON on stdout.

- ``run``: ``connections`` concurrent keep-alive connections, each sending the next request as
  soon as the last answer arrived (a closed loop), for ``warmup_s`` untimed and then
  ``duration_s`` timed seconds.
- ``seq``: one connection, ``n`` requests one after the other after ``warmup`` untimed ones.

The default client is a raw asyncio protocol on uvloop (when installed): a pre-encoded request,
and only the status line, Content-Length and ``x-shipyard-model-version`` read from each
answer, so the generator costs as little CPU as Python allows on these 2 shared cores.
``"client": "httpx"`` runs the same loop with ``httpx.AsyncClient`` for comparison. Latencies
are grouped by the version header, so a canary's answers are told from the primary's.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

VERSION = b"\r\nx-shipyard-model-version:"
LENGTH = b"\r\ncontent-length:"
CHUNKED = b"\r\ntransfer-encoding: chunked"


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, str]] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answer = self._answer()
        if answer is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"the server closed the connection: {exc}"))

    def _answer(self) -> tuple[int, str] | None:
        """(status, version header) once a whole response is buffered, which it then drops."""
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        at = head.find(LENGTH)
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            total = end + 4 + int(head[at + len(LENGTH) : None if stop < 0 else stop])
        elif CHUNKED in head:  # small bodies only: wait for the last chunk
            last = buf.find(b"\r\n0\r\n\r\n", end + 2)
            if last < 0:
                return None
            total = last + 7
        else:
            raise ValueError("a response with neither Content-Length nor chunks")
        if len(buf) < total:
            return None
        del buf[:total]
        at = head.find(VERSION)
        label = ""
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            label = head[at + len(VERSION) : None if stop < 0 else stop].strip().decode()
        return int(head[9:12]), label

    async def send(self, request: bytes) -> tuple[int, str]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def raw_request(url: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Tally:
    """Latencies and statuses of the timed requests, by version header."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.statuses: dict[int, int] = {}
        self.timing = False

    def add(self, status: int, label: str, seconds: float) -> None:
        if not self.timing:
            return
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.setdefault(label, []).append(seconds)


async def raw_worker(url: str, body: bytes, stop: list[float], tally: Tally) -> None:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, parts.hostname, parts.port)
    request = raw_request(url, body)
    clock = time.perf_counter
    try:
        while True:
            started = clock()
            if started >= stop[0]:
                return
            status, label = await conn.send(request)
            tally.add(status, label, clock() - started)
    finally:
        conn.transport.close()


async def httpx_worker(client: Any, url: str, body: bytes, stop: list[float], tally: Tally) -> None:
    headers = {"content-type": "application/json"}
    clock = time.perf_counter
    while True:
        started = clock()
        if started >= stop[0]:
            return
        response = await client.post(url, content=body, headers=headers)
        label = response.headers.get("x-shipyard-model-version", "")
        tally.add(response.status_code, label, clock() - started)


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    """A closed loop on ``connections`` connections: warm-up, then the timed period."""
    url, body = plan["url"], plan["body"].encode()
    n, warmup, duration = plan["connections"], plan["warmup_s"], plan["duration_s"]
    tally = Tally()
    stop = [time.perf_counter() + warmup + duration + 3600]  # moved below, once timing starts
    client = None
    if plan.get("client") == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        client = httpx.AsyncClient(limits=limits, timeout=60)
        workers = [httpx_worker(client, url, body, stop, tally) for _ in range(n)]
    else:
        workers = [raw_worker(url, body, stop, tally) for _ in range(n)]
    tasks = [asyncio.ensure_future(w) for w in workers]
    await asyncio.sleep(warmup)
    watched = plan.get("watch_pid")
    server0 = tree_cpu(watched) if watched else 0.0
    cpu0, started = _cpu(), time.perf_counter()
    tally.timing = True
    stop[0] = started + duration
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    cpu = _cpu() - cpu0
    server = tree_cpu(watched) - server0 if watched else None
    if client is not None:
        await client.aclose()
    return summary(tally, elapsed, cpu) | {"server_cpu_s": server}


async def seq(plan: dict[str, Any]) -> dict[str, Any]:
    """One connection, requests one after the other."""
    url, body = plan["url"], plan["body"].encode()
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(Connection, parts.hostname, parts.port)
    request = raw_request(url, body)
    tally = Tally()
    clock = time.perf_counter
    for i in range(plan["warmup"] + plan["n"]):
        tally.timing = i >= plan["warmup"]
        started = clock()
        status, label = await conn.send(request)
        tally.add(status, label, clock() - started)
    conn.transport.close()
    return summary(tally, None, None)


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        used[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0)
        todo += children.get(pid, [])
    return total / ticks


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(tally: Tally, elapsed: float | None, cpu: float | None) -> dict[str, Any]:
    everything = [x for values in tally.latencies.values() for x in values]
    ok = len(everything)
    out: dict[str, Any] = {
        "requests": sum(tally.statuses.values()),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "p50_ms": quantile(everything, 0.5) * 1e3 if ok else None,
        "p90_ms": quantile(everything, 0.9) * 1e3 if ok else None,
        "p99_ms": quantile(everything, 0.99) * 1e3 if ok else None,
        "by_version": {
            label: {
                "n": len(values),
                "p50_ms": quantile(values, 0.5) * 1e3,
                "p99_ms": quantile(values, 0.99) * 1e3,
            }
            for label, values in sorted(tally.latencies.items())
        },
    }
    if elapsed is not None:
        out |= {"elapsed_s": elapsed, "rps": ok / elapsed, "client_cpu_s": cpu}
    return out


def main() -> int:
    plan = json.loads(sys.argv[1])
    loop = _loop_name()
    result = asyncio.run(run(plan) if plan["mode"] == "run" else seq(plan))
    client = "httpx" if plan.get("client") == "httpx" else "raw"
    print(json.dumps({**result, "client": f"{client} on {loop}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
