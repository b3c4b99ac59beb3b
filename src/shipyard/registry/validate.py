"""``sy.validate``: run checks on a registered version against a baseline, store the report.

The report is stored with the version (status, every check's figures and interval bounds),
its HTML rendering goes to the blob store (and into the version's run as
``validations/<id>.html``), and promotion reads the stored record: a version is promotable
to an alias when a passing validation names the alias's holder as its baseline.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, NotFound, require
from shipyard.models.files import LoadedModel
from shipyard.registry.api import current_tracker, load_model, resolve
from shipyard.registry.config import load_model_checks
from shipyard.registry.policy import Policy
from shipyard.registry.uris import parse_model_ref
from shipyard.store.entities import ArtifactEntry, ModelVersion, ValidationRecord
from shipyard.tracking.models import current_user

DEFAULT = "default"  # baseline: the holder of @production when there is one, else none


@dataclass(frozen=True)
class Baseline:
    version: ModelVersion | None
    alias: str | None


def read_data(data: Any) -> Any:
    """A DataFrame from a DataFrame, a dict of columns, or a Parquet / CSV / JSON-lines file."""
    pd: Any = require("pandas", "data")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame(data)
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise InvalidInput(f"no data file {str(path)!r}")
        suffix = path.suffix.lower()
        try:
            if suffix in (".parquet", ".pq"):
                return pd.read_parquet(path)
            if suffix == ".csv":
                return pd.read_csv(path)
            if suffix in (".jsonl", ".ndjson"):
                return pd.read_json(path, lines=True)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {str(path)!r}: {exc}") from None
        raise InvalidInput(f"{str(path)!r}: data files are .parquet, .csv or .jsonl")
    raise InvalidInput(
        f"data must be a pandas DataFrame, a dict of columns or a file path, "
        f"got {type(data).__name__}"
    )


def resolve_baseline(name: str, baseline: str | None) -> Baseline:
    store = current_tracker().store
    if baseline is None or baseline == "none":
        return Baseline(None, None)
    if baseline == DEFAULT:
        holder = store.get_registered_model(name).aliases.get("production")
        if holder is None:
            return Baseline(None, "production")
        return Baseline(store.get_model_version(name, holder), "production")
    ref = parse_model_ref(baseline, name=name)
    if ref.name != name:
        raise InvalidInput(f"the baseline {baseline!r} is not a version of {name!r}")
    if ref.alias == "latest":
        raise InvalidInput("the baseline cannot be @latest: name a version or an alias")
    model = store.get_registered_model(name)
    if ref.alias is not None and ref.alias not in model.aliases:
        # An unset protected alias is the normal state before a first promotion; any other
        # unset alias is more likely a typo, which must not turn into "no baseline".
        if ref.alias in Policy.of(model).protected_aliases:
            return Baseline(None, ref.alias)
        raise NotFound(
            f"model {name!r} has no alias {ref.alias!r} (its aliases: "
            f"{', '.join(model.aliases) or 'none'}); use --baseline none (baseline=None) "
            "to validate without a baseline"
        )
    return Baseline(resolve(store, ref), ref.alias)


def validate(
    model: str,
    *,
    data: Any,
    target: str | None = None,
    baseline: str | None = DEFAULT,
    checks: Sequence[Any] | None = None,
    slice_by: str | None = None,
    task: str | None = None,
    trust: bool = False,
    config: str | Path | None = None,
) -> Any:
    """Validate a registered version (``NAME/N``, ``NAME@ALIAS``) on ``data`` and store the
    report with it. Returns the ValidationReport (``status``, ``results``, ``to_dict()``,
    ``to_html()``, ``to_table()``; ``record`` is the stored ValidationRecord).

    With no ``checks``, they come from ``shipyard.yaml`` (here or in a parent folder), which
    may also give ``target``, ``baseline`` and ``slice_by``. ``baseline`` defaults to the
    holder of ``@production`` (none if unset); ``None`` validates without one.
    """
    from shipyard.tracking.datasets import describe_dataset
    from shipyard.validation import validate_models

    tracker = current_tracker()
    version = resolve(tracker.store, parse_model_ref(model))
    declared: list[str] = []
    if checks is None:
        spec = load_model_checks(version.name, Path(config) if config else None)
        checks, declared = spec.checks, spec.declared
        target = target or spec.target
        slice_by = slice_by or spec.slice_by
        if baseline == DEFAULT and spec.baseline != "@production":
            baseline = spec.baseline
    if not checks:
        raise InvalidInput("no checks to run: pass checks=[...] or declare them in shipyard.yaml")
    if target is None:
        raise InvalidInput("say which column holds the true values: target=... (--target)")
    frame = read_data(data)
    base = resolve_baseline(version.name, baseline)
    if base.version is not None and base.version.version == version.version:
        raise InvalidInput(f"{version.uri} cannot be its own baseline")
    candidate = load_model(version.uri, trust=trust)
    baseline_model: LoadedModel | None = None
    if base.version is not None:
        baseline_model = load_model(base.version.uri, trust=trust)
    report = validate_models(
        candidate,
        frame,
        target=target,
        baseline=baseline_model,
        checks=list(checks),
        slice_by=slice_by,
        task=task,
        candidate_label=f"{version.name}/{version.version}",
        baseline_label=f"{base.version.name}/{base.version.version}" if base.version else None,
    )
    names = list(dict.fromkeys(r.name for r in report.results if r.slice is None))
    html_digest = tracker.blobs.put_bytes(report.to_html().encode("utf-8"))
    record = tracker.store.add_validation(
        version.name,
        version.version,
        status=report.status,
        checks=names or declared,
        report=report.to_dict(),
        baseline_version=base.version.version if base.version else None,
        baseline_alias=base.alias,
        data_digest=describe_dataset(frame, "validation").digest,
        report_digest=html_digest[0],
        actor=current_user(),
    )
    _attach_to_run(tracker, version, record, html_digest)
    return dataclasses.replace(report, record=record)


def _attach_to_run(
    tracker: Any, version: ModelVersion, record: ValidationRecord, html: tuple[str, int]
) -> None:
    """The HTML report also appears among the version's run's artifacts."""
    if version.run_id is None:
        return
    entry = ArtifactEntry(f"validations/{version.name}-v{version.version}-{record.id}.html", *html)
    with contextlib.suppress(NotFound):
        tracker.store.add_artifacts(version.run_id, [entry])
