"""Reports: status, JSON round trip, the terminal table, the gate, the HTML page."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from typing import Any

import pytest
from validation_helpers import Fixed, loaded

from shipyard.errors import InvalidInput, ValidationFailed
from shipyard.validation import CheckResult, ValidationReport, checks, validate_models


@pytest.fixture(scope="module")
def report(iris: Any, iris_models: Any) -> ValidationReport:
    return validate_models(
        iris_models["weak"],
        iris,
        target="species",
        baseline=iris_models["good"],
        slice_by="country",
        checks=[
            checks.metric("accuracy", min=0.6),
            checks.no_regression("accuracy", max_drop=0.01),
            checks.predictions_valid(),
        ],
        candidate_label="iris-clf/4",
        baseline_label="iris-clf/3",
    )


def _report(*statuses: str) -> ValidationReport:
    results = [CheckResult(f"c{i}", s, f"[{s}]") for i, s in enumerate(statuses)]
    return ValidationReport(results, "m/2", None, "classification", "y", 10)


def test_status_is_the_most_severe() -> None:
    assert _report().status == "passed"
    assert _report("passed", "inconclusive").status == "inconclusive"
    assert _report("inconclusive", "failed", "passed").status == "failed"


def test_dict_round_trips_through_strict_json(report: ValidationReport) -> None:
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)  # what a PostgreSQL JSON column accepts
    again = ValidationReport.from_dict(json.loads(text))
    assert again == report
    assert again.status == data["status"] == "failed"
    assert data["metrics"]["baseline"]["accuracy"] == pytest.approx(0.9733, abs=1e-4)
    assert data["diagnostics"]["confusion"]["labels"] == ["setosa", "versicolor", "virginica"]


def test_from_dict_refuses_other_formats() -> None:
    with pytest.raises(InvalidInput, match="not a validation report"):
        ValidationReport.from_dict({"format": 99})
    with pytest.raises(InvalidInput, match="not a validation report"):
        ValidationReport.from_dict({"format": 1, "results": []})


def test_table_colours_each_status(report: ValidationReport) -> None:
    from rich.console import Console

    table = report.to_table()
    assert [c.header for c in table.columns] == ["check", "country", "status", "message"]
    console = Console(file=io.StringIO(), record=True, width=200, color_system="standard")
    console.print(table)
    assert "Validation of iris-clf/4 against iris-clf/3: failed" in console.export_text(clear=False)
    assert "95% interval [" in console.export_text(clear=False)  # printed as is, not as markup
    coloured = console.export_text(styles=True)
    assert "\x1b[32mpassed" in coloured and "\x1b[31mfailed" in coloured
    yellow = Console(file=io.StringIO(), record=True, color_system="standard")
    yellow.print(_report("inconclusive").to_table())
    assert "\x1b[33minconclusive" in yellow.export_text(styles=True)


def test_raise_for_status_names_what_did_not_pass() -> None:
    _report("passed").raise_for_status()
    with pytest.raises(ValidationFailed, match=r"m/2 failed: c1 failed: \[failed\]; c0 incon"):
        _report("inconclusive", "failed").raise_for_status()


def _images(page: str) -> dict[str, str]:
    """alt text -> decoded SVG of each inline image."""
    found = re.findall(r'<img alt="([^"]+)" src="data:image/svg\+xml;base64,([^"]+)"', page)
    return {alt: base64.b64decode(data).decode() for alt, data in found}


@pytest.fixture(scope="module")
def page(report: ValidationReport) -> str:
    pytest.importorskip("matplotlib")
    return report.to_html()


def test_a_classification_page_has_confusion_and_calibration(page: str) -> None:
    images = _images(page)
    assert set(images) == {"Confusion matrix", "Calibration curve"}
    assert all("<svg" in svg for svg in images.values())
    assert "no_regression:accuracy" in page and "metric:accuracy" in page
    assert "<th>baseline</th>" in page and "(worse)" in page
    assert "<th>country</th>" in page  # the slice column
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(?!data:)', page)


def test_a_binary_page_calibrates_the_positive_class(cancer: Any, cancer_models: Any) -> None:
    pytest.importorskip("matplotlib")
    report = validate_models(
        cancer_models["good"], cancer, target="target", checks=[checks.metric("roc_auc", min=0.9)]
    )
    assert report.diagnostics["calibration"]["kind"] == "P(class = 1)"
    assert set(_images(report.to_html())) == {"Confusion matrix", "Calibration curve"}


def test_a_regression_page_has_residuals(diabetes: Any, diabetes_models: Any) -> None:
    pytest.importorskip("matplotlib")
    report = validate_models(
        diabetes_models["good"],
        diabetes,
        target="progression",
        checks=[checks.metric("rmse", max=100)],
    )
    assert set(_images(report.to_html())) == {"Residuals"}
    assert len(report.diagnostics["residuals"]["predicted"]) == len(diabetes)


def test_a_stored_report_gives_the_same_page(report: ValidationReport, page: str) -> None:
    assert ValidationReport.from_dict(report.to_dict()).to_html() == page


def test_text_is_escaped() -> None:
    result = CheckResult("<script>alert(1)</script>", "failed", "a < b & c")
    page = ValidationReport([result], "m<1>", None, "classification", "y", 3).to_html()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page and "a &lt; b &amp; c" in page


def test_without_matplotlib_the_page_says_so(
    iris: Any, iris_models: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = validate_models(
        iris_models["good"], iris, target="species", checks=[checks.predictions_valid()]
    )
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    page = report.to_html()
    assert "data:image" not in page
    assert "Plots need matplotlib" in page and "predictions_valid" in page


def test_a_plot_that_cannot_be_drawn_leaves_a_note() -> None:
    pytest.importorskip("matplotlib")
    broken = {"confusion": {"labels": ["a", "b"], "matrix": "not a matrix"}, "notes": []}
    report = ValidationReport(
        [CheckResult("c", "passed")], "m/1", None, "classification", "y", 40, diagnostics=broken
    )
    page = report.to_html()
    assert "data:image" not in page
    assert "the confusion matrix could not be drawn: " in page


def test_differences_are_positive_when_the_candidate_is_better(
    diabetes: Any, diabetes_models: Any
) -> None:
    report = validate_models(
        diabetes_models["good"],
        diabetes,
        target="progression",
        baseline=diabetes_models["mean"],
        checks=[checks.no_regression("rmse")],
    )
    check = report.results[0]
    assert check.figures["difference"] > 0  # lower rmse: better
    page = report.to_html()
    assert "<th>difference (positive: candidate better)</th>" in page
    cell = re.search(
        r"<td>rmse</td>(?:<td class='num'>[^<]*</td>){2}<td class='num'>([^<]*)<", page
    )
    assert cell is not None
    assert cell.group(1) == f"{check.figures['difference']:+.4g} (better)"


def test_the_calibration_curve_shows_the_baseline_too(report: ValidationReport) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from shipyard.validation.plots import _draw_calibration

    found = report.diagnostics
    assert found["calibration_baseline"]["kind"] == found["calibration"]["kind"]
    fig = _draw_calibration(Figure, found, (report.candidate, report.baseline))
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["perfectly calibrated", "iris-clf/4", "iris-clf/3"]


def test_a_baseline_without_probabilities_is_noted(iris: Any, iris_models: Any) -> None:
    report = validate_models(
        iris_models["good"],
        iris,
        target="species",
        baseline=loaded(Fixed(iris["species"].to_numpy())),
        checks=[checks.predictions_valid()],
    )
    assert "calibration" in report.diagnostics
    assert report.diagnostics["calibration_baseline"] is None
    assert report.diagnostics["notes"] == [
        "no calibration curve of the baseline: it has no predict_proba"
    ]
