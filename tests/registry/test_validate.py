"""sy.validate on registered versions: baselines, stored reports, shipyard.yaml, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.registry.config import load_model_checks

DATA = load_breast_cancer(as_frame=True)
FRAME = DATA.frame.rename(columns=lambda c: c.replace(" ", "_"))
FEATURES = FRAME.drop(columns=["target"])


def _register(model) -> str:  # type: ignore[no-untyped-def]
    model.fit(FEATURES, FRAME["target"])
    with sy.start_run() as run:
        return run.log_model(model, "cancer", input_example=FEATURES[:5]).uri


def _good():  # type: ignore[no-untyped-def]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


CHECKS = [
    sy.checks.metric("accuracy", min=0.9),
    sy.checks.no_regression("accuracy", max_drop=0.01),
    sy.checks.predictions_valid(),
]


def test_validate_stores_the_report_and_gates_promotion(tracking, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOGNAME", "alice")
    _register(_good())
    first = sy.validate("cancer/1", data=FRAME, target="target", checks=CHECKS)
    assert first.status == "passed" and first.record.baseline_version is None
    assert first.record.baseline_alias == "production"
    sy.promote("cancer/1", "production")
    _register(DummyClassifier(strategy="most_frequent"))
    worse = sy.validate("cancer/2", data=FRAME, target="target", checks=CHECKS)
    assert worse.status == "failed" and worse.record.baseline_version == 1
    regression = next(r for r in worse.results if r.name == "no_regression:accuracy")
    assert regression.status == "failed" and regression.interval[1] < -0.01
    stored = tracking.store.list_validations("cancer", 2)[0]
    assert stored.report["status"] == "failed" and stored.created_by == "alice"
    with pytest.raises(sy.ValidationFailed):
        sy.promote("cancer/2")
    # the HTML report is a blob, and an artifact of the version's run
    html = tracking.blobs.read_bytes(stored.report_digest).decode()
    assert "<html" in html.lower() and "no_regression" in html
    run_id = sy.get_model_version("cancer/2").run_id
    paths = [a.path for a in tracking.store.list_artifacts(run_id, prefix="validations/")]
    assert paths == [f"validations/cancer-v2-{stored.id}.html"]


def test_an_equal_model_passes_against_the_holder(tracking) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    sy.promote("cancer/1", force=True, reason="first")
    _register(_good())
    report = sy.validate("cancer/2", data=FRAME, target="target", checks=CHECKS)
    assert report.status == "passed", report.to_dict()
    done = sy.promote("cancer/2")
    assert done.previous == 1 and done.validation.id == report.record.id


def test_holder_moving_after_validation_is_a_conflict(tracking) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        _register(_good())
    sy.promote("cancer/1", force=True, reason="first")
    sy.validate("cancer/3", data=FRAME, target="target", checks=CHECKS)
    sy.promote("cancer/2", force=True, reason="hotfix")  # moves while 3's report waits
    with pytest.raises(Conflict, match="validated against cancer/1"):
        sy.promote("cancer/3")


def test_tiny_data_is_inconclusive(tracking) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    sy.promote("cancer/1", force=True, reason="first")
    _register(_good())
    report = sy.validate("cancer/2", data=FRAME[:12], target="target", checks=CHECKS)
    assert report.status == "inconclusive"
    with pytest.raises(sy.ValidationFailed, match="its last one: inconclusive"):
        sy.promote("cancer/2")


def test_checks_from_shipyard_yaml(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n"
        "  cancer:\n"
        "    target: target\n"
        "    slice_by: slice\n"
        "    checks:\n"
        "      - metric: accuracy\n"
        "        min: 0.9\n"
        "      - no_regression: roc_auc\n"
        "        max_drop: 0.01\n"
        "      - latency: {p95_ms: 1000, batch_size: 1, max_calls: 5}\n"
        "      - signature_compatible\n"
        "      - predictions_valid\n"
    )
    data = FRAME.assign(slice=np.where(np.arange(len(FRAME)) % 2 == 0, "even", "odd"))
    report = sy.validate("cancer/1", data=data)  # checks, target, slices from the file
    names = {(r.name, r.slice) for r in report.results}
    assert ("metric:accuracy", None) in names and ("metric:accuracy", "even") in names
    assert ("latency", None) in names and report.status == "passed"


@pytest.mark.parametrize(
    ("yaml_text", "error", "message"),
    [
        (None, InvalidInput, "no shipyard.yaml"),
        ("models: {}\n", InvalidInput, "declares no checks for model 'cancer'"),
        (
            "models:\n  cancer:\n    basline: none\n    checks: [predictions_valid]\n",
            InvalidInput,
            "unknown keys basline",
        ),
        ("models:\n  cancer:\n    checks: []\n", InvalidInput, "checks is empty"),
        ("models:\n  cancer:\n    checks: [speed]\n", InvalidInput, "unknown check 'speed'"),
        ("models:\n  cancer:\n    checks:\n      - metric: accurcy\n", InvalidInput, "accurcy"),
        (
            "models:\n  cancer:\n    checks:\n      - metric: accuracy\n        mn: 1\n",
            InvalidInput,
            "mn",
        ),
        ("models: [\n", InvalidInput, "cannot read"),
    ],
)
def test_bad_check_files(tracking, tmp_path, yaml_text, error, message) -> None:  # type: ignore[no-untyped-def]
    if yaml_text is not None:
        (tmp_path / "shipyard.yaml").write_text(yaml_text)
    with pytest.raises(error, match=message):
        load_model_checks("cancer")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": "nope"}, InvalidInput, "nope"),
        ({"data": FRAME.drop(columns=["mean_radius"])}, InvalidInput, "mean_radius"),
        ({"data": "missing.parquet"}, InvalidInput, "missing.parquet"),
        ({"baseline": "@prodution"}, NotFound, "no alias 'prodution'"),
        ({"data": 42}, InvalidInput, "DataFrame"),
        ({"checks": []}, InvalidInput, "no checks"),
        ({"baseline": "cancer/1"}, InvalidInput, "its own baseline"),
        ({"baseline": "other/1"}, InvalidInput, "not a version of 'cancer'"),
    ],
)
def test_bad_validation_input(tracking, kwargs, error, message) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    args = {"data": FRAME, "target": "target", "checks": CHECKS, **kwargs}
    with pytest.raises(error, match=message):
        sy.validate("cancer/1", **args)
    assert tracking.store.list_validations("cancer") == []


def test_data_files(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    FRAME.to_parquet(tmp_path / "d.parquet")
    FRAME.to_csv(tmp_path / "d.csv", index=False)
    for name in ("d.parquet", "d.csv"):
        report = sy.validate("cancer/1", data=tmp_path / name, target="target", checks=CHECKS)
        assert report.status == "passed"
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(InvalidInput, match=r"\.parquet, \.csv or \.jsonl"):
        sy.validate("cancer/1", data=tmp_path / "d.txt", target="target", checks=CHECKS)


def test_custom_checks_import_from_the_project_folder(tracking, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _register(_good())
    project = tmp_path / "project"  # not the working folder, so not importable by chance
    project.mkdir()
    (project / "projchecks.py").write_text(
        "def enough_positives(ctx):\n    return int((ctx.y == 1).sum()) > 10\n"
    )
    (project / "shipyard.yaml").write_text(
        "models:\n  cancer:\n    target: target\n    checks:\n"
        "      - metric: accuracy\n        min: 0.5\n"
        "      - custom: projchecks:enough_positives\n"
    )
    report = sy.validate("cancer/1", data=FRAME, config=project / "shipyard.yaml")
    assert {r.name: r.status for r in report.results}["enough_positives"] == "passed"
