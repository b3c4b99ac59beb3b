"""Output helpers for the CLI: consoles, JSON, and human formats for times, sizes and series."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "running": "bold blue",
    "finished": "green",
    "failed": "bold red",
    "killed": "yellow",
    "cached": "cyan",  # pipeline steps
    "skipped": "dim",
}
BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"
SPARK_WIDTH = 60


def out(width: int | None = None) -> Console:
    """A console on the current stdout (made per call so test runners can swap the stream)."""
    return Console(file=sys.stdout, highlight=False, width=width)


def err() -> Console:
    """A console on the current stderr, for progress, notices and errors."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """``error: <message>`` as one line on stderr."""
    # Multi-line messages (a filter quoted under a caret) are folded; the caret line goes,
    # since the message names the position anyway.
    parts = [p.strip() for p in message.splitlines() if p.strip().strip("^")]
    line = " | ".join(parts)
    err().print(f"error: {line}", markup=False, style="red")


def print_notice(message: str) -> None:
    err().print(message, markup=False, style="dim")


# -- JSON ---------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Machine-readable JSON on stdout; never Rich-formatted, never invalid (no bare NaN)."""
    sys.stdout.write(json.dumps(json_safe(data), indent=2, allow_nan=False, default=str))
    sys.stdout.write("\n")
    sys.stdout.flush()


# -- scalars ------------------------------------------------------------------------------


def short_id(run_id: str, full: bool = False) -> str:
    return run_id if full else run_id[:8]


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def format_time(ts: float | None, *, iso: bool = False, now: float | None = None) -> str:
    """``3m ago`` for recent times (ISO 8601 UTC past a week, or when ``iso`` is set)."""
    if ts is None:
        return "-"
    if iso:
        return iso_time(ts) or "-"
    age = (time.time() if now is None else now) - ts
    if age < 0 or age >= 7 * 86400:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    if age < 60:
        return "just now" if age < 5 else f"{int(age)}s ago"
    if age < 3600:
        return f"{int(age // 60)}m ago"
    if age < 86400:
        return f"{int(age // 3600)}h ago"
    return f"{int(age // 86400)}d ago"


def format_duration(seconds: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 04h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_size(size: int | None) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_number(value: float | None) -> str:
    """A metric value in at most 6 significant digits; NaN and infinities spelled out."""
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


# -- tables -------------------------------------------------------------------------------


class PlainTable(Table):
    """A Table that shows text as it is: run names, params and paths are data, and a value
    like ``[/]`` or ``[bold]x`` must print as written, not be read as Rich markup."""

    def add_column(self, header: Any = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(Text(header) if isinstance(header, str) else header, *args, **kwargs)

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def table(*columns: str) -> Table:
    """A plain table with the house style."""
    t = PlainTable(header_style="bold", box=None, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    return t


def key_value_table(rows: Iterable[tuple[str, Any]]) -> Table:
    """Two columns, key and value, for a record's attributes."""
    t = PlainTable(show_header=False, box=None, pad_edge=False)
    t.add_column("key", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for key, value in rows:
        t.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return t


def section(console: Console, title: str, body: Any) -> None:
    """A blank line, a bold heading, then ``body`` (headings as table titles would wrap)."""
    console.print()
    console.print(Text(title, style="bold underline"))
    console.print(body)


# -- series -------------------------------------------------------------------------------


def downsample(values: Sequence[float], width: int = SPARK_WIDTH) -> list[float]:
    """At most ``width`` values: each the mean of its bucket's non-NaN values (NaN if none,
    so a gap marks a stretch with no number at all)."""
    if len(values) <= width:
        return list(values)
    buckets: list[float] = []
    for i in range(width):
        lo = i * len(values) // width
        hi = (i + 1) * len(values) // width
        chunk = [v for v in values[lo:hi] if not math.isnan(v)]
        buckets.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return buckets


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """Unicode blocks ▁..█ scaled between the finite min and max; NaN drawn as ``·``."""
    points = downsample(values, width)
    finite = [v for v in points if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    chars = []
    for v in points:
        if math.isnan(v):
            chars.append(GAP)
        elif math.isinf(v):
            chars.append(BLOCKS[-1] if v > 0 else BLOCKS[0])
        elif hi == lo:
            chars.append(BLOCKS[(len(BLOCKS) - 1) // 2])
        else:
            chars.append(BLOCKS[round((v - lo) / (hi - lo) * (len(BLOCKS) - 1))])
    return "".join(chars)
