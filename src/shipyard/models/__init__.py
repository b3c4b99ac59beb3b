"""Models: signatures now; flavors, saving and loading come with the registry (issue 3)."""

from __future__ import annotations

from shipyard.models.signature import ColumnSpec, Signature, TensorSpec, infer_signature

__all__ = ["ColumnSpec", "Signature", "TensorSpec", "infer_signature"]
