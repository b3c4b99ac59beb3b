"""Prometheus metrics at ``/metrics``, read from the gateway's own counters when scraped, so
serving a request costs no metric updates beyond the counters it keeps anyway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.gateway.core import Gateway


class _Collector:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["endpoint", "version", "role"]
        requests = CounterMetricFamily(
            "shipyard_requests", "Predictions served, by deployment.", labels=labels
        )
        errors = CounterMetricFamily(
            "shipyard_errors", "Predictions whose model raised, by deployment.", labels=labels
        )
        latency = CounterMetricFamily(
            "shipyard_latency_seconds", "Time spent predicting, by deployment.", labels=labels
        )
        weight = GaugeMetricFamily(
            "shipyard_weight", "Share of traffic a deployment takes.", labels=labels
        )
        ready = GaugeMetricFamily(
            "shipyard_deployment_ready", "1 when the deployment is loaded and warm.", labels=labels
        )
        for served in list(self.gateway.served.values()):
            d = served.deployment
            values = [d.endpoint, served.label, d.role]
            requests.add_metric(values, served.requests)
            errors.add_metric(values, served.errors)
            latency.add_metric(values, served.latency_total)
            weight.add_metric(values, d.weight)
            ready.add_metric(values, 1.0 if served.ready else 0.0)
        yield from (requests, errors, latency, weight, ready)
        yield CounterMetricFamily(
            "shipyard_shadow_dropped",
            "Requests not copied to a shadow because its queue was full.",
            value=self.gateway.shadow_dropped,
        )
        yield CounterMetricFamily(
            "shipyard_logs_dropped",
            "Prediction log records dropped because the log buffer was full.",
            value=self.gateway.logger.dropped,
        )


def render(gateway: Gateway) -> tuple[bytes, str]:
    """The metrics page and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_Collector(gateway))
    return generate_latest(registry), CONTENT_TYPE_LATEST
