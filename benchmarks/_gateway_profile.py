"""Where a server's time goes under load, for benchmarks/gateway.py --profile: py-spy samples
of the running process, summarised by thread and by function.

py-spy's raw format is one line per distinct stack, ``frame;frame;...;leaf COUNT``, root first,
each frame ``function (file:line)``; with ``--threads`` the first frame names the thread.
*Inclusive* share: of all samples, those with the function anywhere on the stack (counted
once per stack); *self*: those where it is the leaf. Samples are wall-clock samples of threads
that were not idle, so a thread waiting for the GIL counts as busy where it waits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
# What the summary's "focus" list keeps: the gateway's own code and the big pieces under it.
_FOCUS = re.compile(
    r"shipyard/|sklearn/.*\.predict$|DataFrame\.to_dict|json/__init__\.py:dumps|parquet|"
    r"uuid4|httptools_impl\.py:RequestResponseCycle\.(run_asgi|send)|_WorkItem\.run"
)
_ROOTS = re.compile(r"shipyard/cli/|gateway/server\.py:serve$")  # the whole event-loop thread


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter or on PATH, or None."""
    import sys

    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, *, gil: bool = False) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (raw format); wait on the result."""
    exe = py_spy()
    assert exe is not None
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250"]
    cmd += ["--format", "raw", "--output", str(out), "--threads", "--nonblocking"]
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _name(frame: str) -> str:
    """``module.py:function`` from py-spy's ``function (path/to/module.py:123)``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    parts = Path(path).parts
    # the package-relative path where there is one: shipyard/gateway/app.py, starlette/...
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            parts = parts[len(parts) - parts[::-1].index(anchor) :]
            break
    return f"{'/'.join(parts[-3:])}:{match.group('func')}"


def _thread(frame: str) -> str:
    """``MainThread`` from ``thread (123): MainThread``; numbered pool threads as one."""
    name = re.sub(r"^thread \(\d+\): ", "", frame)
    return re.sub(r"_\d+$", "_*", name)


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Shares of samples by thread, and the top functions inclusive and self."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = _thread(frames[0]), frames[1:]
        total += count
        threads[thread] += count
        names = [_name(f) for f in frames]
        for name in set(names):
            inclusive[name] += count
        if names:
            leaf[names[-1]] += count
    share = 100.0 / total if total else 0.0
    return {
        "samples": total,
        "threads_pct": {t: round(c * share, 1) for t, c in threads.most_common()},
        "inclusive_pct": {n: round(c * share, 1) for n, c in inclusive.most_common(top)},
        "focus_pct": {
            n: round(c * share, 1)
            for n, c in inclusive.most_common()
            if _FOCUS.search(n) and not _ROOTS.search(n) and c * share >= 0.5
        },
        "self_pct": {n: round(c * share, 1) for n, c in leaf.most_common(top)},
    }
