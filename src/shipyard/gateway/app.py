"""The gateway's HTTP face: a Starlette app speaking Shipyard JSON, MLflow scoring and the Open
Inference Protocol v2 on every endpoint, with health, readiness and Prometheus metrics.

Starlette rather than FastAPI: the hot path reads bytes and writes bytes, and a request model
per protocol would parse every body twice. Each answer says which version made it
(``x-shipyard-model-version``) and carries a request id (``x-request-id``, the client's own
when it sent one).
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from shipyard.errors import NotFound, ShipyardError
from shipyard.gateway import protocols as p
from shipyard.gateway.core import Gateway, ShadowJob
from shipyard.gateway.loading import Served
from shipyard.gateway.logs import LogRecord
from shipyard.gateway.routing import Route

JSON = "application/json"
VERSION_HEADER = "x-shipyard-model-version"
Parse = Callable[[bytes, Any], Any]
Respond = Callable[[Any, Served, str], Any]
ErrorBody = Callable[[ShipyardError], dict[str, Any]]


def _shipyard_error(exc: ShipyardError) -> dict[str, Any]:
    return exc.to_dict()


def _mlflow_error(exc: ShipyardError) -> dict[str, Any]:
    # MLflow's scoring server answers client mistakes as BAD_REQUEST; its REST API's code for
    # something that is not there is RESOURCE_DOES_NOT_EXIST
    if exc.http_status == 404:
        code = "RESOURCE_DOES_NOT_EXIST"
    else:
        code = "BAD_REQUEST" if exc.http_status < 500 else "INTERNAL_ERROR"
    return {"error_code": code, "message": exc.message}


def _v2_error(exc: ShipyardError) -> dict[str, Any]:
    return {"error": exc.message}


class ModelError(ShipyardError):
    """The model raised while predicting: the request was fine, the model was not."""

    http_status = 500
    code = "MODEL_ERROR"


class NotReady(ShipyardError):
    http_status = 503
    code = "NOT_READY"


_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count()


def next_request_id() -> str:
    """32 hex characters, unique per process start: a random prefix and a counter. uuid4 per
    request reads os.urandom, a system call that gives up the GIL on the hot path."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _wrong_length(outputs: Any, data: Any) -> str | None:
    """What is wrong when a model answers a different number of rows than it was given."""
    if isinstance(outputs, (dict, str, bytes)) or not hasattr(outputs, "__len__"):
        return None  # one answer for the whole request (a dict of named outputs): no rows
    try:
        rows, answers = len(data), len(outputs)
    except TypeError:  # a 0-d array, or input without rows: nothing to compare
        return None
    if rows == answers:
        return None
    return f"returned {answers} predictions for {rows} input rows"


def create_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving ``gateway``'s endpoints (start the gateway first)."""

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > gateway.max_body:
            raise p.PayloadTooLarge(
                f"request body is {int(declared):,} bytes; the limit is {gateway.max_body:,}"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > gateway.max_body:
                raise p.PayloadTooLarge(f"request body is over the limit of {gateway.max_body:,}")
            chunks.append(chunk)
        return b"".join(chunks)

    def route_of(name: str) -> Route:
        route = gateway.routes.get(name)
        if route is not None:
            return route
        if name in gateway.endpoints:
            failure = gateway.failure(name)
            if failure is not None:
                raise NotReady(
                    f"endpoint {name!r} cannot serve: its model failed to load: {failure}"
                )
            raise NotReady(f"endpoint {name!r} is loading its model; try again shortly")
        raise NotFound(f"no endpoint named {name!r}")

    def pinned(route: Route, version: str) -> Served:
        # the versions that answer clients; a shadow's figures must stay its own copies
        for served in (route.primary, route.canary):
            if served is None:
                continue
            if str(served.deployment.model_version) == version:
                return served
        raise NotFound(f"endpoint {route.endpoint!r} serves no version {version!r} right now")

    async def serve(
        request: Request,
        name: str,
        parse: Parse,
        respond: Respond,
        errors: ErrorBody,
        version: str | None = None,
    ) -> Response:
        request_id = request.headers.get("x-request-id") or next_request_id()
        target: Served | None = None
        try:
            route = route_of(name)
            if version is not None:
                target = pinned(route, version)
            else:
                sticky = route.sticky_header
                target = route.choose(request.headers.get(sticky) if sticky else None)
            body = await read_body(request)
            data = parse(body, target.signature)
        except ShipyardError as exc:
            headers = {"x-request-id": request_id}
            if target is not None:
                headers[VERSION_HEADER] = target.label
                if isinstance(exc, p.BadInput):
                    # refused by this version's signature: an error of this version for the
                    # analysis, so a candidate refusing what the primary takes is rolled back
                    target.recorder.record_rejected()
                    target.rejected += 1
            return JSONResponse(errors(exc), exc.http_status, headers=headers)
        predictor = target.predictor
        assert predictor is not None  # routes hold only ready deployments
        started = time.perf_counter()
        error = None
        outputs: Any = None
        payload = b""
        try:
            outputs = await predictor.apredict(data)
        except Exception as exc:
            error = f"failed: {type(exc).__name__}: {exc}"
            if not predictor.alive():
                gateway.lost(target, error)
        latency = time.perf_counter() - started
        if error is None:
            error = _wrong_length(outputs, data)
        if error is None:
            try:
                payload = p.encode(respond(outputs, target, request_id))
            except ShipyardError as exc:  # the client asked for an output the model lacks
                headers = {VERSION_HEADER: target.label, "x-request-id": request_id}
                return JSONResponse(errors(exc), exc.http_status, headers=headers)
            except (ValueError, TypeError, OverflowError) as exc:
                error = f"returned what JSON cannot hold: {exc}"
        target.recorder.record(latency, error is not None, None if error else outputs)
        target.count(latency, error is not None)
        shadowed = route.shadow is not None and version is None and error is None
        # a request copied to a shadow is always logged: the pair is what the shadow is for
        log = shadowed or route.log_sample >= 1.0 or random.random() < route.log_sample
        if shadowed:
            gateway.copy_to_shadow(
                ShadowJob(route, parse, body, outputs, data, target.signature, request_id, log)
            )
        if log:
            gateway.logger.add(
                LogRecord(
                    request_id=request_id,
                    time=time.time(),
                    endpoint=name,
                    version=target.label,
                    role=target.deployment.role,
                    latency_ms=latency * 1000,
                    status=500 if error else 200,
                    inputs=body,  # as sent: encoding the parsed frame costs 100x more
                    outputs=outputs,
                    error=error,
                )
            )
        headers = {VERSION_HEADER: target.label, "x-request-id": request_id}
        if error is not None:
            failure = ModelError(f"the model {target.label} {error}")
            return JSONResponse(errors(failure), 500, headers=headers)
        return Response(payload, media_type=JSON, headers=headers)

    def predictions(outputs: Any, served: Served, request_id: str) -> Any:
        return {"predictions": p.predictions_json(outputs)}

    async def shipyard_predict(request: Request) -> Response:
        return await serve(
            request, request.path_params["name"], p.shipyard_input, predictions, _shipyard_error
        )

    async def mlflow_invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type")

        def parse(body: bytes, signature: Any) -> Any:
            return p.mlflow_input(body, content_type, signature)

        return await serve(request, request.path_params["name"], parse, predictions, _mlflow_error)

    async def v2_infer(request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        try:
            p.refuse_binary(request.headers.get("inference-header-content-length"))
        except ShipyardError as exc:
            return JSONResponse(_v2_error(exc), exc.http_status)
        requests: dict[str, p.V2Request] = {}

        def parse(body: bytes, signature: Any) -> Any:
            parsed = p.v2_input(body, signature)
            requests["it"] = parsed
            return parsed.data

        def respond(outputs: Any, served: Served, request_id: str) -> Any:
            parsed = requests["it"]
            return p.v2_response(
                outputs,
                model_name=name,
                model_version=str(served.deployment.model_version),
                request_id=parsed.id or request_id,
                output_names=parsed.output_names,
            )

        return await serve(request, name, parse, respond, _v2_error, version=version)

    # -- health and metadata ---------------------------------------------------------------

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "gateway": gateway.id})

    async def readyz(request: Request) -> Response:
        waiting = sorted(set(gateway.endpoints) - set(gateway.routes))
        if waiting:
            failed = {n: f for n in waiting if (f := gateway.failure(n)) is not None}
            loading = [n for n in waiting if n not in failed]
            return JSONResponse({"ready": False, "loading": loading, "failed": failed}, 503)
        return JSONResponse({"ready": True, "endpoints": sorted(gateway.routes)})

    async def endpoint_ping(request: Request) -> Response:
        try:
            route_of(request.path_params["name"])
        except ShipyardError as exc:
            return JSONResponse(exc.to_dict(), exc.http_status)
        return Response("\n", media_type="application/json")

    async def endpoint_info(request: Request) -> Response:
        name = request.path_params["name"]
        endpoint = gateway.endpoints.get(name)
        if endpoint is None:
            return JSONResponse(NotFound(f"no endpoint named {name!r}").to_dict(), 404)
        route = gateway.routes.get(name)
        ready = {s.id for s in route.deployments} if route else set()
        body = endpoint.to_dict()
        for deployment in body["deployments"]:
            served = gateway.served.get(deployment["id"])
            deployment["state"] = served.state if served else "unknown"
            deployment["serving"] = deployment["id"] in ready
        return JSONResponse(body)

    async def v2_server(request: Request) -> Response:
        from shipyard import __version__

        return JSONResponse({"name": "shipyard", "version": __version__, "extensions": []})

    async def v2_live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(request: Request) -> Response:
        ready = gateway.ready()
        return JSONResponse({"ready": ready}, 200 if ready else 503)

    async def v2_model(request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        try:
            route = route_of(name)
            served = pinned(route, version) if version else route.primary
        except ShipyardError as exc:
            return JSONResponse(_v2_error(exc), exc.http_status)
        versions = sorted({str(s.deployment.model_version) for s in route.deployments})
        body = p.v2_metadata(
            name,
            versions,
            served.signature,
            f"shipyard_{served.flavor}",
            output_datatype=served.output_datatype,
        )
        return JSONResponse(body)

    async def v2_model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        try:
            route = route_of(name)
            if version:
                pinned(route, version)
        except NotFound as exc:
            return JSONResponse(_v2_error(exc), 404)
        except ShipyardError:
            return JSONResponse({"ready": False}, 503)
        return JSONResponse({"ready": True})

    async def metrics(request: Request) -> Response:
        from shipyard.gateway.metrics import render

        body, content_type = render(gateway)
        return Response(body, media_type=content_type)

    routes = [
        HttpRoute("/healthz", healthz),
        HttpRoute("/readyz", readyz),
        HttpRoute("/metrics", metrics),
        HttpRoute("/endpoints/{name}", endpoint_info),
        HttpRoute("/endpoints/{name}/predict", shipyard_predict, methods=["POST"]),
        HttpRoute("/endpoints/{name}/invocations", mlflow_invocations, methods=["POST"]),
        HttpRoute("/endpoints/{name}/ping", endpoint_ping),
        HttpRoute("/endpoints/{name}/health", endpoint_ping),
        HttpRoute("/v2", v2_server),
        HttpRoute("/v2/health/live", v2_live),
        HttpRoute("/v2/health/ready", v2_ready),
        HttpRoute("/v2/models/{name}", v2_model),
        HttpRoute("/v2/models/{name}/ready", v2_model_ready),
        HttpRoute("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
        HttpRoute("/v2/models/{name}/versions/{version}", v2_model),
        HttpRoute("/v2/models/{name}/versions/{version}/ready", v2_model_ready),
        HttpRoute("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        # JSON like every other answer (tritonclient cannot read Starlette's plain text);
        # "error" for v2 clients, "error_code"/"message" for the others
        status = getattr(exc, "status_code", 404)
        message = f"no such URL here: {request.method} {request.url.path}"
        if status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        body = {"error_code": "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"}
        return JSONResponse({**body, "message": message, "error": message}, status)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
