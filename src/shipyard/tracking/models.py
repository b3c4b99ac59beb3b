"""``run.log_model``: save a model by flavor into the run's artifacts and register a version."""

from __future__ import annotations

import getpass
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.store import validation as v
from shipyard.store.entities import ArtifactEntry, ModelVersion

if TYPE_CHECKING:
    from shipyard.models.files import ModelInfo
    from shipyard.tracking.run import ActiveRun


@dataclass(frozen=True)
class LoggedModel:
    """Where a logged model is: in its run, and as a registered version when registered."""

    run_id: str
    artifact_path: str
    flavor: str
    signature: dict[str, Any] | None
    version: ModelVersion | None = None

    @property
    def uri(self) -> str:
        """``models:/NAME/N`` when registered, else ``runs:/RUN_ID/PATH``."""
        return self.version.uri if self.version else f"runs:/{self.run_id}/{self.artifact_path}"


def current_user() -> str:
    """Who is acting, for the audit log: the OS user until the team server brings users."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return "unknown"


def log_model(
    run: ActiveRun,
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    register: bool = True,
    artifact_path: str | None = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
) -> LoggedModel:
    from shipyard.artifacts.folders import upload_folder
    from shipyard.artifacts.paths import normalize_artifact_path
    from shipyard.models.files import save_model

    run._check_open()
    v.check_model_name(name)
    if not isinstance(register, bool):
        raise InvalidInput(f"register must be True or False, got {register!r}")
    folder_in_run = normalize_artifact_path(artifact_path or name)
    tracker = run._tracker
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        info: ModelInfo = save_model(model, Path(tmp) / "model", input_example=input_example)
        files = upload_folder(tracker.blobs, Path(tmp) / "model")
    run._record([ArtifactEntry(f"{folder_in_run}/{f.path}", f.digest, f.size) for f in files])
    signature = info.signature.to_dict() if info.signature else None
    version = None
    if register:
        version = tracker.store.create_model_version(
            name,
            files=files,
            flavor=info.flavor,
            signature=signature,
            run_id=run.id,
            artifact_path=folder_in_run,
            description=description,
            tags={str(k): str(val) for k, val in (tags or {}).items()},
            actor=current_user(),
        )
    return LoggedModel(run.id, folder_in_run, info.flavor, signature, version)
