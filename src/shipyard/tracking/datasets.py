"""Describing a data set for lineage: content digest, schema, row count, summary statistics."""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.store.entities import Dataset

MAX_STAT_COLUMNS = 200


def describe_dataset(data: Any, name: str, *, context: str = "", source: str = "") -> Dataset:
    """A Dataset record for a pandas DataFrame, a numpy array or a file path."""
    if isinstance(data, (str, os.PathLike)):
        return _describe_file(os.fspath(data), name, context)
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        return _describe_frame(data, name, context, source)
    if module == "numpy" and hasattr(data, "dtype"):
        return _describe_array(data, name, context, source)
    raise InvalidInput(
        f"log_dataset takes a pandas DataFrame, a numpy array or a file path; "
        f"got {type(data).__name__}"
    )


def _describe_frame(df: Any, name: str, context: str, source: str) -> Dataset:
    import pandas as pd

    digest = hashlib.sha256()
    for col, dtype in df.dtypes.items():
        digest.update(f"{col}\x00{dtype}\x01".encode())
    digest.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    stats: dict[str, dict[str, Any]] = {}
    for col in list(df.columns)[:MAX_STAT_COLUMNS]:
        series = df[col]
        entry: dict[str, Any] = {"nulls": int(series.isna().sum())}
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            desc = series.describe()
            for stat in ("mean", "std", "min", "25%", "50%", "75%", "max"):
                if stat in desc:
                    entry[stat] = _plain(desc[stat])
        else:
            entry["unique"] = int(series.nunique(dropna=True))
            top = series.value_counts(dropna=True).head(5)
            entry["top"] = {str(k): int(n) for k, n in top.items()}
        stats[str(col)] = entry
    return Dataset(
        name=name,
        digest=digest.hexdigest(),
        rows=len(df),
        schema={str(col): str(dtype) for col, dtype in df.dtypes.items()},
        stats=stats,
        context=context,
        source=source,
    )


def _describe_array(arr: Any, name: str, context: str, source: str) -> Dataset:
    import numpy as np

    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(f"{arr.dtype}\x00{arr.shape}\x01".encode())
    digest.update(memoryview(arr).cast("B"))
    stats: dict[str, dict[str, Any]] = {}
    if arr.size and np.issubdtype(arr.dtype, np.number):
        flat = arr.astype(float, copy=False)
        stats["values"] = {
            "nulls": int(np.isnan(flat).sum()),
            "mean": _plain(np.nanmean(flat)),
            "std": _plain(np.nanstd(flat)),
            "min": _plain(np.nanmin(flat)),
            "max": _plain(np.nanmax(flat)),
        }
    return Dataset(
        name=name,
        digest=digest.hexdigest(),
        rows=int(arr.shape[0]) if arr.ndim else 1,
        schema={"dtype": str(arr.dtype), "shape": str(arr.shape)},
        stats=stats,
        context=context,
        source=source,
    )


def _describe_file(path: str, name: str, context: str) -> Dataset:
    if not os.path.isfile(path):
        raise NotFound(f"data file {path!r} does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return Dataset(
        name=name,
        digest=digest.hexdigest(),
        rows=-1,
        schema={},
        stats={"file": {"bytes": os.path.getsize(path)}},
        context=context,
        source=os.path.abspath(path),
    )


def _plain(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
