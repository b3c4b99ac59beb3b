"""Check results hold JSON values only; statuses order by severity."""

from __future__ import annotations

import datetime

import pytest

from shipyard.errors import InvalidInput
from shipyard.validation import CheckResult
from shipyard.validation.base import jsonable, worst

np = pytest.importorskip("numpy")


def test_worst_status() -> None:
    assert worst([]) == "passed"
    assert worst(["passed", "inconclusive", "passed"]) == "inconclusive"
    assert worst(["inconclusive", "failed", "passed"]) == "failed"


def test_figures_become_json_values() -> None:
    result = CheckResult(
        "x",
        "passed",
        figures={
            "n": np.int64(3),
            "ok": np.bool_(True),
            "nan": float("nan"),
            "inf": np.float64("inf"),
            "array": np.array([[1, 2]]),
            "pair": (1.5, "a"),
            "when": datetime.date(2024, 5, 1),
            7: None,
        },
        slice=np.int32(4),
        interval=(np.float64(-1), 2),
    )
    assert result.figures == {
        "n": 3,
        "ok": True,
        "nan": None,
        "inf": None,
        "array": [[1, 2]],
        "pair": [1.5, "a"],
        "when": "2024-05-01",
        "7": None,
    }
    assert type(result.slice) is int and result.interval == (-1.0, 2.0)
    assert CheckResult.from_dict(result.to_dict()) == result


def test_unknown_values_become_strings() -> None:
    assert jsonable({"model": object}) == {"model": "<class 'object'>"}


def test_status_must_be_one_of_three() -> None:
    with pytest.raises(InvalidInput, match="passed, inconclusive, failed"):
        CheckResult("x", "skipped")
    with pytest.raises(InvalidInput, match="not a check result"):
        CheckResult.from_dict({"status": "passed"})
