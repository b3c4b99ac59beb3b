"""Pipelines: ``@sy.step`` and ``@sy.pipeline`` build a DAG; each step runs as a child run,
its outputs stored by type, and an unchanged step is a cache hit that says where its outputs
came from."""

from __future__ import annotations

from shipyard.pipelines.dag import Handle, Pipeline, Step, pipeline, step
from shipyard.pipelines.runner import PipelineResult, StepOutcome

__all__ = ["Handle", "Pipeline", "PipelineResult", "Step", "StepOutcome", "pipeline", "step"]
