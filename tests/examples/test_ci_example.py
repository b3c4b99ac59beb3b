"""examples/ci end to end, as its GitHub workflow runs it: train and register, write the
hold-out data, validate with the declared checks (exit 0 or 1), promote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHIPYARD_URI": f"sqlite:///{cwd / 'store.db'}",
        "SHIPYARD_ARTIFACTS": str(cwd / "artifacts"),
        "SHIPYARD_CAPTURE": "false",
        "LOGNAME": "ci",
        "MPLBACKEND": "Agg",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_the_ci_gate_passes_a_good_model_and_stops_a_worse_one(tmp_path: Path) -> None:
    python, shipyard = str(BIN / "python"), str(BIN / "shipyard")
    config = str(ROOT / "examples" / "ci" / "shipyard.yaml")
    trained = _run([python, str(ROOT / "examples" / "train_iris.py")], tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "models:/iris-clf/1" in trained.stdout
    holdout = _run(
        [python, str(ROOT / "examples" / "ci" / "make_holdout.py"), "holdout.parquet"], tmp_path
    )
    assert holdout.returncode == 0, holdout.stderr
    validate = [shipyard, "models", "validate", "iris-clf@latest", "--data", "holdout.parquet"]
    good = _run([*validate, "--config", config, "--html", "report.html"], tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "passed" in good.stdout and (tmp_path / "report.html").stat().st_size > 10_000
    promoted = _run([shipyard, "models", "promote", "iris-clf/1"], tmp_path)
    assert promoted.returncode == 0, promoted.stderr

    worse = _run(
        [python, str(ROOT / "examples" / "train_iris.py"), "--alpha", "0.5", "--epochs", "1"],
        tmp_path,
    )
    assert "models:/iris-clf/2" in worse.stdout, worse.stderr
    bad = _run([*validate, "--config", config, "--json"], tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["status"] == "failed"
    failed = {r["name"] for r in report["results"] if r["status"] == "failed"}
    assert "metric:accuracy" in failed
    refused = _run([shipyard, "models", "promote", "iris-clf/2"], tmp_path)
    assert refused.returncode == 1 and "no passing validation" in refused.stderr
