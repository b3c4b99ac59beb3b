"""A validation report: every check's result, a metric summary and plot diagnostics.

It is plain data: ``to_dict`` gives JSON values only (what the registry stores beside a
model version) and ``from_dict`` reads it back equal. ``to_table`` renders it for a
terminal; ``to_html`` as one self-contained page (no script, no external file: plots are
SVG images inline as ``data:`` URIs, and without matplotlib the page says how to get them).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from shipyard.errors import InvalidInput, ValidationFailed
from shipyard.validation.base import FAILED, INCONCLUSIVE, PASSED, CheckResult, jsonable, worst
from shipyard.validation.metrics import METRICS
from shipyard.validation.plots import draw

FORMAT = 1
STYLES = {PASSED: "green", FAILED: "red", INCONCLUSIVE: "yellow"}
COLOURS = {PASSED: "#1a7f37", FAILED: "#cf222e", INCONCLUSIVE: "#9a6700"}
BACKGROUNDS = {PASSED: "#dafbe1", FAILED: "#ffebe9", INCONCLUSIVE: "#fff8c5"}
NO_MATPLOTLIB = (
    "Plots need matplotlib, which is not installed: pip install 'shipyard[models]' "
    "(or pip install matplotlib)."
)


@dataclass(frozen=True)
class ValidationReport:
    """What ``validate_models`` found. ``status`` is the most severe of the results'."""

    results: list[CheckResult]
    candidate: str
    baseline: str | None
    task: str
    target: str
    rows: int
    slice_by: str | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    # The stored registry record, when the report came from ``sy.validate`` (not serialised).
    record: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", list(self.results))
        object.__setattr__(self, "metrics", jsonable(self.metrics))
        object.__setattr__(self, "diagnostics", jsonable(self.diagnostics))

    @property
    def status(self) -> str:
        return worst(r.status for r in self.results)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def problems(self) -> list[CheckResult]:
        """The results that did not pass, failures first."""
        return sorted((r for r in self.results if not r.passed), key=lambda r: r.status != FAILED)

    def raise_for_status(self) -> None:
        """Raise ValidationFailed naming the checks that did not pass (for a gate)."""
        problems = self.problems()
        if problems:
            listed = "; ".join(
                f"{r.name}{'' if r.slice is None else f' [{r.slice}]'} {r.status}: {r.message}"
                for r in problems[:5]
            )
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ValidationFailed(f"validation of {self.candidate} {self.status}: {listed}{more}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": self.status,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "task": self.task,
            "target": self.target,
            "rows": self.rows,
            "slice_by": self.slice_by,
            "created_at": self.created_at,
            "metrics": self.metrics,
            "results": [r.to_dict() for r in self.results],
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        if data.get("format") != FORMAT:
            raise InvalidInput(f"not a validation report this Shipyard reads: {dict(data)!r:.200}")
        try:
            return cls(
                results=[CheckResult.from_dict(r) for r in data["results"]],
                candidate=str(data["candidate"]),
                baseline=None if data.get("baseline") is None else str(data["baseline"]),
                task=str(data["task"]),
                target=str(data["target"]),
                rows=int(data["rows"]),
                slice_by=data.get("slice_by"),
                metrics=dict(data.get("metrics") or {}),
                diagnostics=dict(data.get("diagnostics") or {}),
                created_at=float(data.get("created_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a validation report: {exc}") from None

    def to_table(self) -> Any:
        """A rich Table of the results: passed green, failed red, inconclusive yellow."""
        from rich.table import Table
        from rich.text import Text

        against = f" against {self.baseline}" if self.baseline else ""
        title = Text.assemble(
            f"Validation of {self.candidate}{against}: ",
            (self.status, f"bold {STYLES[self.status]}"),
        )
        table = Table(title=title, title_justify="left")
        sliced = any(r.slice is not None for r in self.results)
        table.add_column("check", no_wrap=True)
        if sliced:
            table.add_column(self.slice_by or "slice")
        table.add_column("status", no_wrap=True)
        table.add_column("message")
        for r in self.results:
            cells = [Text(r.name)]
            if sliced:
                cells.append(Text("all rows" if r.slice is None else str(r.slice)))
            # Text, not markup strings: a message holding "[...]" must print as it is
            cells += [Text(r.status, style=STYLES[r.status]), Text(r.message)]
            table.add_row(*cells)
        return table

    def to_html(self) -> str:
        """One self-contained HTML page: metrics, checks, and plots inline."""
        against = f" against {self.baseline}" if self.baseline else ""
        title = f"Validation of {self.candidate}{against}"
        created = datetime.datetime.fromtimestamp(self.created_at, tz=datetime.timezone.utc)
        sliced = f", sliced by <code>{escape(self.slice_by)}</code>" if self.slice_by else ""
        body = "\n".join(
            [
                f"<h1>{escape(title)} {_badge(self.status)}</h1>",
                f'<p class="sub">{escape(self.task)} on {self.rows} rows, target '
                f"<code>{escape(self.target)}</code>{sliced} &middot; "
                f"{created:%Y-%m-%d %H:%M} UTC</p>",
                "<h2>Metrics</h2>",
                _metrics_table(self),
                "<h2>Checks</h2>",
                _checks_table(self),
                "<h2>Plots</h2>",
                _plots(self.diagnostics, (self.candidate, self.baseline)),
            ]
        )
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n"
        )


# the HTML page

PAGE_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 2em; }
.sub { color: #59636e; }
.badge { display: inline-block; padding: .1em .6em; border-radius: 1em; font-weight: 600; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #d1d9e0; padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: .5em 1em .5em 0; }
figure img { max-width: 100%; } figcaption { color: #59636e; text-align: center; }
.note { color: #59636e; font-style: italic; }
"""


def _badge(status: str) -> str:
    return (
        f'<span class="badge" style="color:{COLOURS[status]};'
        f'background:{BACKGROUNDS[status]}">{escape(status)}</span>'
    )


def _number(value: Any) -> str:
    return "&mdash;" if value is None else f"{value:.4g}"


def _metrics_table(report: ValidationReport) -> str:
    candidate = report.metrics.get("candidate", {})
    baseline = report.metrics.get("baseline")
    if not candidate:
        return '<p class="note">No metric could be computed.</p>'
    head = "<tr><th>metric</th><th>candidate</th>"
    if baseline is not None:
        # the sign of no_regression's difference: positive is better, whatever the metric
        head += "<th>baseline</th><th>difference (positive: candidate better)</th>"
    rows = [head + "</tr>"]
    for name, value in candidate.items():
        row = f"<tr><td>{escape(name)}</td><td class='num'>{_number(value)}</td>"
        if baseline is not None:
            other = baseline.get(name)
            row += f"<td class='num'>{_number(other)}</td><td class='num'>"
            if value is not None and other is not None:
                metric = METRICS.get(name)
                sign = 1 if metric is None or metric.higher_is_better else -1
                gain = sign * (value - other)
                mark = "" if gain == 0 else (" (better)" if gain > 0 else " (worse)")
                row += f"{gain:+.4g}{mark}"
            row += "</td>"
        rows.append(row + "</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _checks_table(report: ValidationReport) -> str:
    sliced = any(r.slice is not None for r in report.results)
    head = "<tr><th>check</th>"
    head += f"<th>{escape(report.slice_by or 'slice')}</th>" if sliced else ""
    head += "<th>status</th><th>message</th></tr>"
    rows = [head]
    for r in report.results:
        row = f'<tr style="background:{BACKGROUNDS[r.status]}"><td>{escape(r.name)}</td>'
        if sliced:
            row += f"<td>{escape('all rows' if r.slice is None else str(r.slice))}</td>"
        row += f'<td style="color:{COLOURS[r.status]}"><b>{escape(r.status)}</b></td>'
        row += f"<td>{escape(r.message)}</td></tr>"
        rows.append(row)
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _plots(diagnostics: dict[str, Any], labels: tuple[str, str | None]) -> str:
    notes = [f'<p class="note">{escape(str(n))}</p>' for n in diagnostics.get("notes", [])]
    drawn = draw(diagnostics, labels)
    if drawn is None:
        return "\n".join([f'<p class="note">{escape(NO_MATPLOTLIB)}</p>', *notes])
    plots, failures = drawn
    notes += [f'<p class="note">{escape(n)}</p>' for n in failures]
    figures = [
        f'<figure><img alt="{escape(p.title)}" src="{p.svg}">'
        f"<figcaption>{escape(p.title)}</figcaption></figure>"
        for p in plots
    ]
    if not figures:
        notes.append('<p class="note">No plots for this report.</p>')
    return "\n".join(figures + notes)
