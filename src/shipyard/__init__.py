"""Shipyard: experiment tracking, model registry, pipelines and safe deployment in one tool.

``import shipyard as sy`` is cheap: everything below is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # tracking
    "set_experiment": "shipyard.tracking.fluent",
    "start_run": "shipyard.tracking.fluent",
    "end_run": "shipyard.tracking.fluent",
    "active_run": "shipyard.tracking.fluent",
    "batched": "shipyard.tracking.fluent",
    "log_metric": "shipyard.tracking.fluent",
    "log_metrics": "shipyard.tracking.fluent",
    "log_param": "shipyard.tracking.fluent",
    "log_params": "shipyard.tracking.fluent",
    "set_tag": "shipyard.tracking.fluent",
    "set_tags": "shipyard.tracking.fluent",
    "log_artifact": "shipyard.tracking.fluent",
    "log_text": "shipyard.tracking.fluent",
    "log_dict": "shipyard.tracking.fluent",
    "log_figure": "shipyard.tracking.fluent",
    "log_dataset": "shipyard.tracking.fluent",
    "get_run": "shipyard.tracking.fluent",
    "get_experiment": "shipyard.tracking.fluent",
    "get_metric_history": "shipyard.tracking.fluent",
    "search_runs": "shipyard.tracking.fluent",
    "delete_run": "shipyard.tracking.fluent",
    "flush": "shipyard.tracking.fluent",
    "log_model": "shipyard.tracking.fluent",
    "ActiveRun": "shipyard.tracking.run",
    # models and registry
    "PythonModel": "shipyard.models",
    "load_model": "shipyard.registry.api",
    "register_model": "shipyard.registry.api",
    "get_model_version": "shipyard.registry.api",
    "set_alias": "shipyard.registry.api",
    "promote": "shipyard.registry.api",
    "validate": "shipyard.registry.validate",
    "checks": "shipyard.validation",
    "ModelVersion": "shipyard.store.entities",
    "RegisteredModel": "shipyard.store.entities",
    # pipelines
    "step": "shipyard.pipelines",
    "pipeline": "shipyard.pipelines",
    "PipelineResult": "shipyard.pipelines",
    # records
    "Run": "shipyard.store.entities",
    "Experiment": "shipyard.store.entities",
    "Metric": "shipyard.store.entities",
    "Dataset": "shipyard.store.entities",
    "Environment": "shipyard.store.entities",
    # stores
    "open_store": "shipyard.store",
    "Store": "shipyard.store.base",
    # errors
    "ShipyardError": "shipyard.errors",
    "InvalidInput": "shipyard.errors",
    "NotFound": "shipyard.errors",
    "AlreadyExists": "shipyard.errors",
    "Conflict": "shipyard.errors",
    "StoreError": "shipyard.errors",
    "PermissionDenied": "shipyard.errors",
    "ValidationFailed": "shipyard.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from shipyard.errors import AlreadyExists as AlreadyExists
    from shipyard.errors import Conflict as Conflict
    from shipyard.errors import InvalidInput as InvalidInput
    from shipyard.errors import NotFound as NotFound
    from shipyard.errors import PermissionDenied as PermissionDenied
    from shipyard.errors import ShipyardError as ShipyardError
    from shipyard.errors import StoreError as StoreError
    from shipyard.errors import ValidationFailed as ValidationFailed
    from shipyard.models import PythonModel as PythonModel
    from shipyard.pipelines import PipelineResult as PipelineResult
    from shipyard.pipelines import pipeline as pipeline
    from shipyard.pipelines import step as step
    from shipyard.registry.api import get_model_version as get_model_version
    from shipyard.registry.api import load_model as load_model
    from shipyard.registry.api import promote as promote
    from shipyard.registry.api import register_model as register_model
    from shipyard.registry.api import set_alias as set_alias
    from shipyard.registry.validate import validate as validate
    from shipyard.store import open_store as open_store
    from shipyard.store.base import Store as Store
    from shipyard.store.entities import Dataset as Dataset
    from shipyard.store.entities import Environment as Environment
    from shipyard.store.entities import Experiment as Experiment
    from shipyard.store.entities import Metric as Metric
    from shipyard.store.entities import ModelVersion as ModelVersion
    from shipyard.store.entities import RegisteredModel as RegisteredModel
    from shipyard.store.entities import Run as Run
    from shipyard.tracking.fluent import active_run as active_run
    from shipyard.tracking.fluent import batched as batched
    from shipyard.tracking.fluent import delete_run as delete_run
    from shipyard.tracking.fluent import end_run as end_run
    from shipyard.tracking.fluent import flush as flush
    from shipyard.tracking.fluent import get_experiment as get_experiment
    from shipyard.tracking.fluent import get_metric_history as get_metric_history
    from shipyard.tracking.fluent import get_run as get_run
    from shipyard.tracking.fluent import log_artifact as log_artifact
    from shipyard.tracking.fluent import log_dataset as log_dataset
    from shipyard.tracking.fluent import log_dict as log_dict
    from shipyard.tracking.fluent import log_figure as log_figure
    from shipyard.tracking.fluent import log_metric as log_metric
    from shipyard.tracking.fluent import log_metrics as log_metrics
    from shipyard.tracking.fluent import log_model as log_model
    from shipyard.tracking.fluent import log_param as log_param
    from shipyard.tracking.fluent import log_params as log_params
    from shipyard.tracking.fluent import log_text as log_text
    from shipyard.tracking.fluent import search_runs as search_runs
    from shipyard.tracking.fluent import set_experiment as set_experiment
    from shipyard.tracking.fluent import set_tag as set_tag
    from shipyard.tracking.fluent import set_tags as set_tags
    from shipyard.tracking.fluent import start_run as start_run
    from shipyard.tracking.run import ActiveRun as ActiveRun
    from shipyard.validation import checks as checks
