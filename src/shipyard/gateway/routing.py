"""Which deployment answers a request: the weighted split between primary and canary, sticky
by a request header when the endpoint names one, and the shadow that gets a copy.

A route is rebuilt whenever the serving configuration changes and swapped in whole, so a
request never sees half of a change. It holds only deployments that are ready in this
gateway: a canary still loading gets none of the traffic, and a new primary takes over only
once it is warm (until then the old one keeps serving).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.gateway.loading import Served
from shipyard.store.entities import Endpoint

DEFAULT_LOG_SAMPLE = 1.0


@dataclass(frozen=True)
class Route:
    endpoint: str
    primary: Served
    canary: Served | None = None
    canary_weight: float = 0.0
    shadow: Served | None = None
    sticky_header: str | None = None
    log_sample: float = DEFAULT_LOG_SAMPLE

    def choose(self, sticky_value: str | None = None) -> Served:
        """The deployment that answers: the canary for its share of requests."""
        if self.canary is None:
            return self.primary
        if sticky_value is not None:
            # crc32, not hash(): every gateway process must send a client the same way
            bucket = (zlib.crc32(sticky_value.encode()) % 10_000) / 10_000
        else:
            bucket = random.random()
        return self.canary if bucket < self.canary_weight else self.primary

    @property
    def deployments(self) -> list[Served]:
        return [s for s in (self.primary, self.canary, self.shadow) if s is not None]


def build_route(
    endpoint: Endpoint, served: Mapping[int, Served], previous: Route | None
) -> Route | None:
    """The route for ``endpoint`` from the deployments ready here; None when it has no ready
    primary (and no previous one to keep serving)."""
    config: dict[str, Any] = endpoint.config
    primary_deployment = endpoint.primary
    primary = served.get(primary_deployment.id)
    if primary is None or not primary.ready:
        if previous is None or not previous.primary.ready:
            return None
        primary = previous.primary  # keep serving the old primary while the new one warms up
    canary = canary_weight = None
    shadow = None
    for deployment in endpoint.deployments:
        candidate = served.get(deployment.id)
        if candidate is None or not candidate.ready or candidate is primary:
            continue
        if deployment.role == "canary" and deployment.weight > 0:
            canary, canary_weight = candidate, deployment.weight
        elif deployment.role == "shadow":
            shadow = candidate
    return Route(
        endpoint=endpoint.name,
        primary=primary,
        canary=canary,
        canary_weight=canary_weight or 0.0,
        shadow=shadow,
        sticky_header=(config.get("sticky_header") or None),
        log_sample=float(config.get("log_sample", DEFAULT_LOG_SAMPLE)),
    )
