"""What a check is and what it returns: shared by the checks, the engine and the report.

Three statuses, by rising severity: ``passed``, ``inconclusive`` (the data cannot tell: too
few rows, a metric undefined on them, a baseline that cannot be scored) and ``failed``. A
report's status is the most severe of its results'.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.validation.context import ValidationContext

PASSED, INCONCLUSIVE, FAILED = "passed", "inconclusive", "failed"
STATUSES = (PASSED, INCONCLUSIVE, FAILED)  # by rising severity


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check, on all rows (``slice`` None) or on one slice's rows.

    ``figures`` holds what was measured (JSON values only: numpy scalars become Python
    numbers, NaN and infinities become None); ``interval`` is a confidence interval where
    the check computed one (for no_regression, of candidate minus baseline, oriented so that
    positive means the candidate is better). ``spec`` is the check's configuration in the
    ``shipyard.yaml`` form (``Check.spec``), so that a stored result says what was asked.
    """

    name: str
    status: str
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    slice: Any = None
    interval: tuple[float, float] | None = None
    spec: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidInput(
                f"a check's status is one of {', '.join(STATUSES)}, not {self.status!r}"
            )
        object.__setattr__(self, "figures", jsonable(dict(self.figures)))
        object.__setattr__(self, "slice", jsonable(self.slice))
        if self.interval is not None:
            lo, hi = self.interval
            object.__setattr__(self, "interval", (float(lo), float(hi)))
        if self.spec is not None:
            object.__setattr__(self, "spec", jsonable(dict(self.spec)))

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "figures": self.figures,
            "slice": self.slice,
            "interval": list(self.interval) if self.interval is not None else None,
            "spec": self.spec,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        try:
            interval, spec = data.get("interval"), data.get("spec")
            return cls(
                name=str(data["name"]),
                status=str(data["status"]),
                message=str(data.get("message", "")),
                figures=dict(data.get("figures") or {}),
                slice=data.get("slice"),
                interval=(interval[0], interval[1]) if interval else None,
                spec=dict(spec) if spec is not None else None,
            )
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise InvalidInput(f"not a check result: {dict(data)!r:.200}") from exc


def worst(statuses: Iterable[str]) -> str:
    """The most severe status: failed beats inconclusive beats passed (passed if none)."""
    return max(statuses, key=STATUSES.index, default=PASSED)


def jsonable(value: Any) -> Any:
    """``value`` as JSON values: numpy scalars as Python ones, non-finite floats as None,
    tuples as lists, anything else unknown as its ``str``."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", None) == 0:
        return jsonable(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return jsonable(tolist())
    isoformat = getattr(value, "isoformat", None)  # datetimes and timestamps
    if callable(isoformat):
        return str(isoformat())
    return str(value)


def number_argument(where: str, arg: str, value: Any) -> float:
    """``value`` as a float; InvalidInput naming ``arg`` for anything but a finite number."""
    # a bool is an int to Python, but ``min=True`` is a mistake, not a limit of 1
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidInput(f"{where}: {arg} must be a finite number, not {value!r}")
    return float(value)


def integer_argument(where: str, arg: str, value: Any, *, at_least: int) -> int:
    """``value`` as an int of at least ``at_least``; InvalidInput naming ``arg`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInput(f"{where}: {arg} must be a whole number, not {value!r}")
    if value < at_least:
        raise InvalidInput(f"{where}: {arg} must be at least {at_least}, not {value!r}")
    return int(value)


class Check:
    """A validation check: ``run`` looks at the context and returns a CheckResult.

    Checks with ``per_slice`` true run again on each slice's rows (``rows`` then holds the
    slice's row positions; None means all rows). ``metrics`` names the built-in metrics a
    check computes, which tells the engine the task and what to summarise. ``spec`` is the
    check's configuration as ``shipyard.yaml`` declares it, every default filled in.
    """

    name: str = "check"
    per_slice: ClassVar[bool] = False

    @property
    def metrics(self) -> tuple[str, ...]:
        return ()

    def spec(self) -> dict[str, Any]:
        """``{kind: first argument or None, **keyword arguments}``, JSON values only.

        A subclass of Check outside Shipyard is a custom check, named by its class.
        """
        cls = type(self)
        return {"custom": f"{cls.__module__}:{cls.__qualname__}", "name": self.name}

    def run(self, ctx: ValidationContext, rows: Any = None) -> CheckResult:
        raise NotImplementedError(f"{type(self).__name__} must implement run(ctx, rows)")

    def result(self, status: str, message: str, **figures: Any) -> CheckResult:
        interval = figures.pop("interval", None)
        return CheckResult(self.name, status, message, figures, interval=interval)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
