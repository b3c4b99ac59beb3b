"""A real gateway on a loopback port: every protocol, every bad input, metrics, logs, and
changes picked up while it runs."""

from __future__ import annotations

import httpx
import pytest
from gateway_helpers import FEATURES, ROW, Models, StartGateway, wait_for

from shipyard.gateway import api
from shipyard.gateway.logs import read_logs

VERSION = "x-shipyard-model-version"


@pytest.fixture
def url(models: Models, start_gateway: StartGateway) -> str:
    api.create_endpoint("iris", "iris-clf/1")
    served = start_gateway()
    served.gateway.wait_ready()
    return served.url


@pytest.mark.parametrize(
    "body",
    [
        {"records": [ROW, ROW]},
        {"columns": {k: [v, v] for k, v in ROW.items()}},
    ],
)
def test_shipyard_json(url: str, body: dict) -> None:
    response = httpx.post(f"{url}/endpoints/iris/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0, 0]}
    assert response.headers[VERSION] == "iris-clf/1"
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": FEATURES, "data": [list(ROW.values())]}},
        {"dataframe_records": [ROW]},
        {"instances": [ROW]},
        {"inputs": {k: [v] for k, v in ROW.items()}},
        {"inputs": [list(ROW.values())]},
    ],
)
def test_mlflow_scoring_payloads(url: str, body: dict) -> None:
    response = httpx.post(f"{url}/endpoints/iris/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0]}


def test_mlflow_csv_and_client_request_id(url: str) -> None:
    csv = ",".join(FEATURES) + "\n" + ",".join(str(v) for v in ROW.values()) + "\n"
    response = httpx.post(
        f"{url}/endpoints/iris/invocations",
        content=csv,
        headers={"content-type": "text/csv", "x-request-id": "abc-1"},
    )
    assert response.json() == {"predictions": [0]}
    assert response.headers["x-request-id"] == "abc-1"


def test_open_inference_protocol(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/iris/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/iris/versions/1/ready").status_code == 200
    meta = httpx.get(f"{url}/v2/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    request = {
        "id": "r1",
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP64", "data": list(ROW.values()) * 2}
        ],
    }
    response = httpx.post(f"{url}/v2/models/iris/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris" and body["model_version"] == "1" and body["id"] == "r1"
    [output] = body["outputs"]
    assert output["shape"] == [2] and output["data"] == [0, 0]
    pinned = httpx.post(f"{url}/v2/models/iris/versions/1/infer", json=request)
    assert pinned.status_code == 200 and pinned.headers[VERSION] == "iris-clf/1"


def test_tritonclient_round_trip(url: str) -> None:
    import numpy as np

    triton = pytest.importorskip("tritonclient.http")
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready("iris")
    metadata = client.get_model_metadata("iris")
    assert metadata["name"] == "iris"
    tensor = triton.InferInput("input", [3, 4], "FP64")
    tensor.set_data_from_numpy(np.array([list(ROW.values())] * 3), binary_data=False)
    wanted = triton.InferRequestedOutput("predict", binary_data=False)
    result = client.infer("iris", [tensor], outputs=[wanted])
    assert result.as_numpy("predict").tolist() == [0, 0, 0]
    client.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/endpoints/iris/predict", b"{", 400, "not valid JSON"),
        ("/endpoints/iris/predict", b'{"rows": []}', 400, "records"),
        ("/endpoints/iris/predict", b'{"records": [{"sepal length (cm)": 1}]}', 422, "missing"),
        (
            "/endpoints/iris/predict",
            b'{"columns": {"sepal length (cm)": ["x"], "sepal width (cm)": [1],'
            b' "petal length (cm)": [1], "petal width (cm)": [1]}}',
            422,
            "sepal length (cm)",
        ),
        ("/endpoints/iris/invocations", b'{"instances": 3}', 400, "instances"),
        ("/endpoints/nope/predict", b"{}", 404, "no endpoint named 'nope'"),
        ("/v2/models/iris/versions/9/infer", b"{}", 404, "no version '9'"),
        ("/v2/models/iris/infer", b'{"inputs": [{"name": "x"}]}', 400, "shape"),
    ],
)
def test_bad_input_is_a_client_error_naming_the_field(
    url: str, path: str, body: bytes, status: int, message: str
) -> None:
    response = httpx.post(
        f"{url}{path}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert message in response.text


def test_body_over_the_limit_is_413(models: Models, start_gateway: StartGateway) -> None:
    api.create_endpoint("iris", "iris-clf/1")
    served = start_gateway(max_body=1000)
    served.gateway.wait_ready()
    big = {"records": [ROW] * 100}
    response = httpx.post(f"{served.url}/endpoints/iris/predict", json=big)
    assert response.status_code == 413 and "limit" in response.json()["message"]


def test_a_failing_model_is_a_500_counted_as_an_error(
    models: Models, start_gateway: StartGateway
) -> None:
    api.create_endpoint("flaky", f"iris-clf/{models.flaky}")
    served = start_gateway()
    served.gateway.wait_ready()
    row = dict(ROW, **{"sepal length (cm)": 5.3})  # 53 % 5 == 3: the flaky model raises
    response = httpx.post(f"{served.url}/endpoints/flaky/predict", json={"records": [row]})
    assert response.status_code == 500
    assert response.json()["error_code"] == "MODEL_ERROR"
    assert "flaky model failed" in response.json()["message"]
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'shipyard_errors_total{endpoint="flaky",role="primary",version="iris-clf/3"} 1.0' in (
        metrics
    )


def test_health_readiness_and_endpoint_info(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{url}/readyz").json() == {"ready": True, "endpoints": ["iris"]}
    info = httpx.get(f"{url}/endpoints/iris").json()
    assert info["deployments"][0]["state"] == "ready" and info["deployments"][0]["serving"]
    assert httpx.get(f"{url}/endpoints/iris/ping").status_code == 200


def test_a_new_endpoint_is_served_without_a_restart(url: str) -> None:
    assert httpx.post(f"{url}/endpoints/late/predict", json={"records": [ROW]}).status_code == 404
    api.create_endpoint("late", "iris-clf/2")
    response = wait_for(
        lambda: (
            r
            if (
                r := httpx.post(f"{url}/endpoints/late/predict", json={"records": [ROW]})
            ).status_code
            == 200
            else None
        ),
        what="the new endpoint to answer",
    )
    assert response.headers[VERSION] == "iris-clf/2"


def test_a_model_that_cannot_load_never_serves(models: Models, start_gateway: StartGateway) -> None:
    api.create_endpoint("untrusted", f"iris-clf/{models.flaky}")
    served = start_gateway(trust=False)
    served.gateway.wait_ready()
    response = httpx.post(f"{served.url}/endpoints/untrusted/predict", json={"records": [ROW]})
    assert response.status_code == 503 and "failed to load" in response.text
    assert "--trust" in response.json()["message"]
    [deployment] = served.gateway.served.values()
    assert deployment.state == "failed" and "--trust" in deployment.error
    ready = httpx.get(f"{served.url}/readyz")
    assert ready.status_code == 503 and "untrusted" in ready.json()["failed"]


def test_prediction_logs_are_written_as_parquet(url: str, tracking) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        httpx.post(f"{url}/endpoints/iris/predict", json={"records": [ROW]})
    wait_for(
        lambda: len(read_logs(tracking.store, tracking.blobs, "iris")[0]) >= 3,
        what="the prediction log",
    )
    frame, _ = read_logs(tracking.store, tracking.blobs, "iris")
    assert set(frame["version"]) == {"iris-clf/1"} and set(frame["status"]) == {200}
    assert "sepal length (cm)" in frame["inputs"].iloc[0] and frame["outputs"].iloc[0] == "[0]"


def test_answers_json_cannot_hold_are_errors(models: Models, start_gateway: StartGateway) -> None:
    api.create_endpoint("dec", f"iris-clf/{models.decimal}")
    served = start_gateway()
    served.gateway.wait_ready()
    response = httpx.post(f"{served.url}/endpoints/dec/predict", json={"records": [ROW]})
    assert response.status_code == 500 and "JSON cannot hold" in response.json()["message"]
    [deployment] = served.gateway.served.values()
    assert deployment.errors == 1 and deployment.recorder.snapshot()["errors"] == 1


def test_a_model_answering_the_wrong_number_of_rows_never_serves(
    models: Models, start_gateway: StartGateway, tracking
) -> None:  # type: ignore[no-untyped-def]
    from gateway_helpers import WrongLengthModel

    import shipyard as sy

    with sy.start_run() as run:
        logged = run.log_model(WrongLengthModel(), "seven", input_example=models.X[:5])
    tracking.writer.flush()
    assert logged.version is not None
    api.create_endpoint("seven", logged.version.uri)
    served = start_gateway()
    served.gateway.wait_ready()
    [deployment] = served.gateway.served.values()
    assert deployment.state == "failed"
    assert "returned 7 predictions for the example's 5 rows" in deployment.error


def test_v2_metadata_says_what_the_model_answers(url: str) -> None:
    meta = httpx.get(f"{url}/v2/models/iris").json()
    assert meta["outputs"][0]["datatype"] == "INT64"  # class labels of a classifier
    unknown = httpx.get(f"{url}/v2/repository/index")
    assert unknown.status_code == 404 and unknown.json()["error"]
    empty = {"inputs": [{"name": "input", "shape": [0, 4], "datatype": "FP64", "data": []}]}
    assert httpx.post(f"{url}/v2/models/iris/infer", json=empty).status_code == 400
    wrong = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}],
        "outputs": [{"name": "nope"}],
    }
    answer = httpx.post(f"{url}/v2/models/iris/infer", json=wrong)
    assert answer.status_code == 400 and "nope" in answer.json()["error"]
