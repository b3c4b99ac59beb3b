"""Output helpers: sparklines, human formats and JSON safety."""

from __future__ import annotations

import json
import math

import pytest

from shipyard.cli import render


def test_sparkline_scales_between_min_and_max() -> None:
    assert render.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert render.sparkline([3.0, 3.0]) == "▄▄"
    assert render.sparkline([]) == ""


def test_sparkline_draws_nan_as_a_gap_and_infinities_at_the_ends() -> None:
    assert render.sparkline([0.0, math.nan, 1.0]) == "▁·█"
    assert render.sparkline([0.5, math.inf, -math.inf, 1.0]) == "▁█▁█"
    assert render.sparkline([math.nan, math.nan]) == "··"


def test_downsample_averages_buckets_ignoring_nan() -> None:
    assert render.downsample([1, 3, 5, 7], 2) == [2, 6]
    out = render.downsample([math.nan, math.nan, 1.0, math.nan], 2)
    assert math.isnan(out[0]) and out[1] == 1.0
    assert len(render.downsample(list(range(1000)), 60)) == 60


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.25, "250ms"),
        (12.34, "12.3s"),
        (245, "4m 05s"),
        (7380, "2h 03m"),
        (3 * 86400 + 4 * 3600, "3d 04h"),
    ],
)
def test_format_duration(seconds, text) -> None:
    assert render.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")]
)
def test_format_size(size, text) -> None:
    assert render.format_size(size) == text


def test_format_time_relative_then_absolute() -> None:
    now = 1_700_000_000.0
    assert render.format_time(now - 2, now=now) == "just now"
    assert render.format_time(now - 90, now=now) == "1m ago"
    assert render.format_time(now - 3 * 3600, now=now) == "3h ago"
    assert render.format_time(now - 2 * 86400, now=now) == "2d ago"
    assert render.format_time(now - 30 * 86400, now=now) == "2023-10-15 22:13"
    assert render.format_time(now, iso=True) == "2023-11-14T22:13:20+00:00"


def test_format_number() -> None:
    assert render.format_number(3.0) == "3"
    assert render.format_number(0.123456789) == "0.123457"
    assert render.format_number(math.nan) == "NaN"
    assert render.format_number(-math.inf) == "-Infinity"
    assert render.format_number(None) == ""


def test_json_safe_makes_valid_json(capsys) -> None:
    render.print_json([{"v": math.nan, "w": [math.inf, 1.5], "x": -math.inf}])
    assert json.loads(capsys.readouterr().out) == [
        {"v": "NaN", "w": ["Infinity", 1.5], "x": "-Infinity"}
    ]


def test_print_error_is_one_line(capsys) -> None:
    render.print_error("invalid filter at position 4: bad\n  a >> b\n      ^")
    err = capsys.readouterr().err
    assert err == "error: invalid filter at position 4: bad | a >> b\n"
