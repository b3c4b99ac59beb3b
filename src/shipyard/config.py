"""Settings, declared once: each has a default and a SHIPYARD_* environment override."""

from __future__ import annotations

import functools
import os

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = ".shipyard"


class Settings(BaseSettings):
    """Where Shipyard keeps things, and how the tracking writer batches."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    # Metadata store: sqlite:///path.db or postgresql+psycopg://user@host/db
    uri: str = ""
    # Artifact root: a local folder or any fsspec URL (s3://bucket/prefix)
    artifacts: str = ""
    # Experiment used when none is set
    experiment: str = "Default"
    # Seconds between background flushes of buffered metrics
    flush_interval: float = 1.0
    # Buffered points that trigger an early flush
    flush_size: int = 200_000
    # Buffered points past which logging waits for the writer (bounds memory)
    max_buffer: int = 1_000_000
    # Seconds within which run ends in quick succession are committed together (0: never)
    group_commit: float = 0.1
    # Record git, entry point and environment on every run
    capture: bool = True

    def model_post_init(self, context: object) -> None:
        # The default store lives in the folder the process started using Shipyard in, and
        # stays there: a program that changes folder mid-run (Hydra does) keeps its store.
        self._home = os.path.abspath(DEFAULT_HOME)

    def store_uri(self) -> str:
        return self.uri or f"sqlite:///{os.path.join(self._home, 'shipyard.db')}"

    def artifact_root(self) -> str:
        return self.artifacts or os.path.join(self._home, "artifacts")


@functools.lru_cache(maxsize=16)
def _cached(env_key: tuple[str | None, ...]) -> Settings:
    return Settings()


_ENV_NAMES = tuple(f"SHIPYARD_{name.upper()}" for name in Settings.model_fields)


def get_settings() -> Settings:
    """Current settings; re-read when SHIPYARD_* variables change."""
    environ = os.environ
    return _cached(tuple(environ.get(name) for name in _ENV_NAMES))
