"""The public API is exactly what shipyard/__init__.py exports, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import shipyard

EXPECTED = {
    "__version__",
    "ActiveRun",
    "ModelVersion",
    "PipelineResult",
    "pipeline",
    "step",
    "PermissionDenied",
    "PythonModel",
    "RegisteredModel",
    "ValidationFailed",
    "checks",
    "get_model_version",
    "load_model",
    "log_model",
    "promote",
    "register_model",
    "set_alias",
    "validate",
    "AlreadyExists",
    "Conflict",
    "Dataset",
    "Environment",
    "Experiment",
    "InvalidInput",
    "Metric",
    "NotFound",
    "Run",
    "ShipyardError",
    "Store",
    "StoreError",
    "active_run",
    "batched",
    "delete_run",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "open_store",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
}


def test_all_is_the_public_api() -> None:
    assert set(shipyard.__all__) == EXPECTED


def test_every_export_resolves() -> None:
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None, name


def test_import_is_lazy() -> None:
    code = (
        "import sys, shipyard; "
        "heavy = [m for m in ('sqlalchemy', 'pandas', 'numpy', 'fsspec', 'pydantic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
