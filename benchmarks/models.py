"""Shipyard's model figures: loading a registered model, beside skops and MLflow; validation.

    .venv/bin/python benchmarks/models.py            # full sizes, installs MLflow on first use
    .venv/bin/python benchmarks/models.py --quick    # smoke run, under a minute
    .venv/bin/python benchmarks/models.py --json --skip-mlflow

Shipyard runs with this interpreter in a fresh process per figure on a fresh store in a
temporary folder (benchmarks/_models_shipyard.py); MLflow in its own venv .bench/mlflow
(benchmarks/_models_mlflow.py). Nothing runs concurrently. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tracking import MLFLOW_VENV, QUIET_MLFLOW, _has_module, fmt, git_state, log, ok, run_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOAD_TARGET = 1.2  # Shipyard's load time / skops's on the same file
VALIDATE_TARGET_S = 5.0  # 100,000 rows, 1,000 resamples
TARGET_ROWS, TARGET_RESAMPLES = 100_000, 1_000
CLASSIFICATION_CASES = [["accuracy"], ["f1"], ["roc_auc"], ["accuracy", "f1", "roc_auc"]]
REGRESSION_CASES = [["rmse"]]


@dataclass(frozen=True)
class Sizes:
    load_repeat: int  # figure 1, interleaved rounds in one process per side; medians
    validate_rows: int  # figure 2, rows validated (the models are fitted on 5,000 others)
    resamples: int  # figure 2, bootstrap resamples of no_regression
    validate_repeat: int  # figure 2, calls per list of metrics; median


FULL = Sizes(load_repeat=15, validate_rows=100_000, resamples=1_000, validate_repeat=3)
QUICK = Sizes(load_repeat=3, validate_rows=10_000, resamples=1_000, validate_repeat=1)


# -- running the two sides ------------------------------------------------------------------


def shipyard(measurement: str, **args: Any) -> dict:
    """One Shipyard measurement in a fresh process on a fresh store."""
    log.print(f"[bold]shipyard[/] {measurement} {args}")
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        env = {
            **os.environ,
            "SHIPYARD_URI": f"sqlite:///{tmp}/shipyard.db",
            "SHIPYARD_ARTIFACTS": f"{tmp}/artifacts",
            # No capture thread running beside the loads; it plays no part in these figures.
            "SHIPYARD_CAPTURE": "false",
        }
        cmd = [sys.executable, str(HERE / "_models_shipyard.py"), measurement, json.dumps(args)]
        load = os.getloadavg()[0]  # other work on these shared cores skews the figures
        result = {**run_json(cmd, env, ROOT), "load_before": load}
    log.print(f"  -> {result}")
    return result


def mlflow_python(args: argparse.Namespace) -> tuple[Path | None, str]:
    """MLflow's interpreter with scikit-learn, installing them on first use; or None and why."""
    python = MLFLOW_VENV / "bin" / "python"
    if args.skip_mlflow:
        return None, "skipped (--skip-mlflow)"
    # The same scikit-learn as Shipyard's venv, so that both sides build and read the same trees.
    ours = metadata.version("scikit-learn")
    ready = python.exists() and all(_has_module(python, m) for m in ("mlflow", "skops"))
    if ready and (args.quick or installed_version(python, "scikit-learn") == ours):
        return python, ""
    if args.quick:
        return None, "not installed and --quick does not install it (run once without --quick)"
    log.print(f"installing MLflow and scikit-learn {ours} into .bench/mlflow (about 2 minutes)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "mlflow", "skops", f"scikit-learn=={ours}"], check=True)
    return python, ""


def installed_version(python: Path, distribution: str) -> str:
    code = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    done = subprocess.run([str(python), "-c", code, distribution], capture_output=True, text=True)
    return done.stdout.strip()


def mlflow_side(python: Path, sizes: Sizes) -> dict[str, Any]:
    """Every MLflow measurement in one process (its import alone takes seconds)."""
    plan = {"load": {"repeat": sizes.load_repeat}}
    log.print(f"[bold]mlflow[/] {plan}")
    env = {**os.environ, **QUIET_MLFLOW, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as tmp:
        cmd = [str(python), str(HERE / "_models_mlflow.py"), json.dumps(plan)]
        return run_json(cmd, env, tmp)


def measure(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """Every measurement, one after the other; the raw figures, in seconds."""
    raw: dict[str, Any] = {"shipyard": {}, "mlflow": {}, "notes": []}
    sy = raw["shipyard"]
    sy["load"] = shipyard("load", repeat=sizes.load_repeat)
    shared = dict(rows=sizes.validate_rows, resamples=sizes.resamples, repeat=sizes.validate_repeat)
    sy["validate_classification"] = shipyard(
        "validate", task="classification", cases=CLASSIFICATION_CASES, **shared
    )
    sy["validate_regression"] = shipyard(
        "validate", task="regression", cases=REGRESSION_CASES, **shared
    )
    python, why = mlflow_python(args)
    if python is None:
        raw["notes"].append(f"MLflow {why}")
    else:
        raw["mlflow"] = mlflow_side(python, sizes)
    return raw


# -- turning figures into rows ----------------------------------------------------------------


@dataclass
class Row:
    figure: str
    shipyard: str
    peer: str = "-"
    ratio: str = "-"  # Shipyard's time / the peer's; < 1 means Shipyard is faster
    target: str = "-"
    verdict: str = "-"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.1f} ms"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def times(value: float | None) -> str:
    return fmt(value, "{:.2f}x")


def load_rows(raw: dict) -> list[Row]:
    """Figure 1: load_model of a registered random forest."""
    sy = raw["shipyard"]["load"]
    if "error" in sy:
        return [Row("load_model", sy["error"])]
    mf = raw["mlflow"].get("load") or {}
    if "error" in mf:
        raw["notes"].append(f"MLflow load: {mf['error']}")
        mf = {}
    warm, cold = sy["warm_s"], sy["cold_s"]
    direct, checked = sy["skops_trusted_s"], sy["skops_checked_s"]
    r_direct, r_checked = ratio(warm, direct), ratio(warm, checked)
    wrong = "" if sy["same_predictions"] else " WRONG PREDICTIONS"
    rows = [
        Row(
            "load_model, warm (files cached), vs skops.io.load",
            ms(warm) + wrong,
            f"{ms(direct)} skops.io.load, trusted list",
            times(r_direct),
            f"≤ {LOAD_TARGET}x",
            ok(r_direct is not None and r_direct <= LOAD_TARGET),
        ),
        Row(
            "load_model, warm, vs get_untrusted_types + load",
            ms(warm),
            f"{ms(checked)} get_untrusted_types + load",
            times(r_checked),
            f"≤ {LOAD_TARGET}x",
            ok(r_checked is not None and r_checked <= LOAD_TARGET),
        ),
        Row(
            "load_model, cold (cache folder removed)",
            ms(cold),
            f"{ms(checked)} get_untrusted_types + load",
            times(ratio(cold, checked)),
        ),
        Row("  warm: api.model_folder (registry, cache)", ms(sy["folder_s"])),
        Row("  warm: read_info (manifest)", ms(sy["manifest_s"])),
        Row("  warm: skops.io.get_untrusted_types", ms(sy["untrusted_s"])),
        Row("  warm: skops.io.load, trusted list", ms(direct)),
        Row("  first load_model in the process (imports)", ms(sy["first_s"])),
    ]
    if mf:
        rows += [
            Row(
                "load_model, warm, vs mlflow.sklearn.load_model (skops)",
                ms(warm),
                f"{ms(mf['skops_s'])} skops (its default)",
                times(ratio(warm, mf["skops_s"])),
            ),
            Row(
                "load_model, cold, vs mlflow.sklearn.load_model (skops)",
                ms(cold),
                f"{ms(mf['skops_s'])} skops (its default)",
                times(ratio(cold, mf["skops_s"])),
            ),
            Row(
                "load_model, warm, vs mlflow.sklearn.load_model (cloudpickle)",
                ms(warm),
                f"{ms(mf['cloudpickle_s'])} cloudpickle",
                times(ratio(warm, mf["cloudpickle_s"])),
            ),
            Row(
                "  MLflow's model file read directly",
                "-",
                f"{ms(mf['skops_file_s'])} skops; {ms(mf['pickle_file_s'])} cloudpickle",
            ),
        ]
    kib = sy["file_bytes"] / 1024
    pickled = mf.get("file_bytes", {}).get("cloudpickle")
    rows.append(
        Row(
            "  model file size",
            f"{kib:,.0f} KiB skops",
            f"{pickled / 1024:,.0f} KiB cloudpickle" if pickled else "-",
        )
    )
    return rows


def validate_rows(raw: dict, sizes: Sizes) -> list[Row]:
    """Figure 2: the whole validate_models call with a paired bootstrap."""
    full = sizes.validate_rows >= TARGET_ROWS and sizes.resamples >= TARGET_RESAMPLES
    rows = []
    for key in ("validate_classification", "validate_regression"):
        res = raw["shipyard"][key]
        if "error" in res:
            rows.append(Row(f"validate_models ({key.removeprefix('validate_')})", res["error"]))
            continue
        size = f"{res['rows']:,} rows x {res['resamples']:,}"
        for case, found in res["cases"].items():
            seconds = found["median_s"]
            metrics = case.replace("+", ", ")
            rows.append(
                Row(
                    f"validate_models, {metrics} ({size})",
                    f"{seconds:.2f} s ({found['status']})",
                    "no peer equivalent",
                    "-",
                    f"≤ {VALIDATE_TARGET_S:g} s" + ("" if full else " (full size)"),
                    ok(seconds <= VALIDATE_TARGET_S) if full else "-",
                )
            )
        rows.append(Row("  both models' predictions on those rows", f"{res['predict_s']:.2f} s"))
    return rows


def notes(raw: dict, sizes: Sizes) -> list[str]:
    out = [
        f"load: a 100-tree RandomForestClassifier on load_breast_cancer, logged with "
        f"run.log_model and loaded as models:/rf/1; medians of {sizes.load_repeat} "
        "interleaved rounds after a warm-up, one process per side. Cold = the local cache "
        "folder removed before the call (the blobs stay in the OS file cache).",
        f"validate: checks.metric + checks.no_regression (max_drop=0.01, confidence=0.95, "
        f"{sizes.resamples:,} resamples) per metric; candidate LogisticRegression / "
        "LinearRegression, baseline a depth-2 / depth-4 decision tree, both loaded with "
        f"api.load_model; median of {sizes.validate_repeat} call(s) after a small warm-up call. "
        "The status in brackets is the report's (the figure is the time, not the verdict).",
    ]
    mf = raw["mlflow"].get("load") or {}
    if mf and "error" not in mf:
        refused = mf.get("skops_default_refused")
        out.append(
            f"MLflow {mf['mlflow']} (scikit-learn {mf['sklearn']}, skops {mf.get('skops')}): "
            "log_model defaults to "
            "skops outside Databricks; "
            + (
                "without skops_trusted_types it refused the forest (skops does not trust "
                "sklearn.tree._tree.Tree by default), so the benchmark passes what "
                "get_untrusted_types finds, as a user must. "
                if refused
                else ""
            )
            + "MLflow has no local cache: each load_model copies the files to a temporary "
            "folder first."
        )
    return out + raw["notes"]


# -- output -------------------------------------------------------------------------------------


def print_table(rows: list[Row], notes: list[str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in ("figure", "Shipyard", "peer", "ratio", "target", "verdict"):
        table.add_column(name, justify="left" if name in ("figure", "peer", "verdict") else "right")
    for row in rows:
        style = "red" if "MISS" in row.verdict or "WRONG" in row.shipyard else None
        table.add_row(*asdict(row).values(), style=style)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(table)
    console.print("ratio: Shipyard's time / the peer's (lower is better; < 1: Shipyard faster).")
    for note in notes:
        console.print(f"- {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Shipyard's model loading and validation.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-mlflow", action="store_true", help="Shipyard's figures only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    raw = measure(args, sizes)
    rows = load_rows(raw) + validate_rows(raw, sizes)
    all_notes = notes(raw, sizes)
    meta = {
        "date": datetime.date.today().isoformat(),
        "shipyard_commit": git_state(),
        "mode": "quick" if args.quick else "full",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        out = {**meta, "sizes": asdict(sizes), "rows": [asdict(r) for r in rows]}
        print(json.dumps({**out, "notes": all_notes, "raw": raw}, indent=2))
    else:
        print_table(
            rows,
            all_notes,
            f"Shipyard models, {meta['date']}, {meta['mode']} run, {meta['seconds']} s, "
            f"load {meta['load_average'][0]:.2f}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
