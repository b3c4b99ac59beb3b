"""The gateway's wire protocols: every accepted form parses to what the model takes, every
malformed one fails with the right error and names the field."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.errors import InvalidInput
from shipyard.gateway.protocols import (
    V2_DATATYPES,
    BadInput,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    V2Request,
    encode,
    mlflow_input,
    predictions_json,
    read_json,
    refuse_binary,
    shipyard_input,
    v2_input,
    v2_metadata,
    v2_response,
)
from shipyard.models import ColumnSpec, Signature, TensorSpec

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS = Signature(tuple(ColumnSpec(n, "float64") for n in NAMES))
TENSOR = Signature(TensorSpec("float32", (None, 4)))
ROWS: list[list[float]] = [
    [5.1, 3.5, 1.4, 0.2],
    [6, 3, 5, 2],
]  # ints for float columns are accepted
RECORDS = [dict(zip(NAMES, row, strict=True)) for row in ROWS]
FLAT = [v for row in ROWS for v in row]
COLUMNS = {n: [row[i] for row in ROWS] for i, n in enumerate(NAMES)}
CSV = ",".join(f'"{n}"' for n in NAMES) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS)
JSON_TYPE = "application/json"


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def v2(inputs: list[Any], **extra: Any) -> bytes:
    return body({"inputs": inputs, **extra})


def tensor(name: str, shape: Any, datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def shipyard(b: bytes, sig: Signature | None) -> Any:
    return shipyard_input(b, sig)


def mlflow(b: bytes, sig: Signature | None) -> Any:
    return mlflow_input(b, JSON_TYPE, sig)


def mlflow_csv(b: bytes, sig: Signature | None) -> Any:
    return mlflow_input(b, "text/csv", sig)


def v2_data(b: bytes, sig: Signature | None) -> Any:
    return v2_input(b, sig).data


Parse = Callable[[bytes, "Signature | None"], Any]
EXPECTED_FRAME = pd.DataFrame(np.array(ROWS, dtype="float64"), columns=NAMES)
EXPECTED_ARRAY = np.array(ROWS, dtype="float32")


@pytest.mark.parametrize(
    ("parse", "request_body"),
    [
        (shipyard, body({"records": RECORDS})),
        (shipyard, body({"columns": COLUMNS, "params": {"k": 1}})),
        (shipyard, body({"inputs": ROWS})),
        (mlflow, body({"dataframe_split": {"columns": NAMES, "data": ROWS}})),
        (mlflow, body({"dataframe_split": {"data": ROWS, "index": [7, 8]}})),
        (mlflow, body({"dataframe_records": RECORDS, "params": {}})),
        (mlflow, body({"instances": RECORDS})),
        (mlflow, body({"instances": ROWS})),
        (mlflow, body({"inputs": COLUMNS})),
        (mlflow, body({"inputs": ROWS})),
        (mlflow_csv, CSV.encode()),
        (v2_data, v2([tensor("x", [2, 4], "FP64", ROWS)])),
        (v2_data, v2([tensor(n, [2], "FP64", c) for n, c in COLUMNS.items()])),
    ],
)
def test_every_form_reaches_a_column_model(parse: Parse, request_body: bytes) -> None:
    pd.testing.assert_frame_equal(parse(request_body, IRIS), EXPECTED_FRAME)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([tensor("x", [2, 4], "FP32", FLAT)], EXPECTED_FRAME.astype("float32").astype("float64")),
        ([tensor(n, [2, 1], "INT64", [[1], [2]]) for n in NAMES], {n: [1.0, 2.0] for n in NAMES}),
        ([tensor(n, [2], "BOOL", [True, False]) for n in NAMES], {n: [1.0, 0.0] for n in NAMES}),
    ],
)
def test_v2_columns_are_widened_losslessly(inputs: list[Any], expected: Any) -> None:
    got = v2_input(v2(inputs), IRIS).data
    pd.testing.assert_frame_equal(got, pd.DataFrame(expected))


@pytest.mark.parametrize(
    ("parse", "request_body"),
    [
        (shipyard, body({"inputs": ROWS})),
        (shipyard, body({"records": RECORDS})),
        (mlflow, body({"instances": ROWS})),
        (mlflow, body({"inputs": {"input": ROWS}})),  # a named tensor
        (mlflow, body({"dataframe_split": {"columns": NAMES, "data": ROWS}})),
        (mlflow_csv, CSV.encode()),
        (v2_data, v2([tensor("input", [2, 4], "FP32", ROWS)])),
        (v2_data, v2([tensor("input", [2, 4], "INT16", [[1, 2, 3, 4]] * 2)])),
    ],
)
def test_every_form_reaches_a_tensor_model(parse: Parse, request_body: bytes) -> None:
    got = parse(request_body, TENSOR)
    expected = np.array([[1, 2, 3, 4]] * 2, "float32") if b"INT16" in request_body else None
    np.testing.assert_array_equal(got, EXPECTED_ARRAY if expected is None else expected)
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    ("parse", "request_body", "expected"),
    [
        (shipyard, body({"records": RECORDS}), EXPECTED_FRAME),
        (shipyard, body({"inputs": ROWS}), np.array(ROWS)),
        (mlflow, body({"dataframe_split": {"data": [[1, 2]]}}), pd.DataFrame([[1, 2]])),
        (v2_data, v2([tensor("x", [4], "FP64", ROWS[0])]), np.array(ROWS[0])),
        (
            v2_data,
            v2([tensor("a", [1], "INT8", [1]), tensor("b", [1, 1], "BYTES", [["z"]])]),
            pd.DataFrame({"a": np.array([1], "int8"), "b": np.array(["z"], object)}),
        ),
    ],
)
def test_without_a_signature_the_input_is_passed_as_sent(
    parse: Parse, request_body: bytes, expected: Any
) -> None:
    got = parse(request_body, None)
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    else:
        np.testing.assert_array_equal(got, expected)


MIXED = Signature(
    (
        ColumnSpec("f32", "float32"),
        ColumnSpec("i8", "int8"),
        ColumnSpec("flag", "bool"),
        ColumnSpec("name", "string"),
    )
)


@pytest.mark.parametrize(
    "columns",
    [
        {"f32": [1.5, 2], "i8": [7, -3], "flag": [True, False], "name": ["a", "b"]},
        {"f32": [1.5, None], "i8": [7, -3], "flag": [True, False], "name": ["a", None]},
        {"f32": [1e10, 0.0], "i8": [1, 2], "flag": [False, True], "name": ["a", "b"], "x": [1, 2]},
    ],
)
def test_json_numbers_take_the_signatures_widths(columns: dict[str, list[Any]]) -> None:
    got = shipyard_input(body({"columns": columns}), MIXED)
    assert [str(t) for t in got.dtypes[:3]] == ["float32", "int8", "bool"]
    assert pd.api.types.is_string_dtype(got["name"])
    np.testing.assert_array_equal(got["f32"], np.array(columns["f32"], dtype="float64"))
    assert list(got.columns) == ["f32", "i8", "flag", "name"]


def test_csv_numbers_take_the_signatures_widths_too() -> None:
    got = mlflow_input(b"name,i8,f32,flag\nb,7,1.5,True\n", "text/csv", MIXED)
    assert [str(t) for t in got.dtypes[:3]] == ["float32", "int8", "bool"]
    assert got.iloc[0].tolist() == [1.5, 7, True, "b"]


def test_the_fast_path_matches_enforce() -> None:
    sig = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "int64"), ColumnSpec("c", "bool")))
    columns = {"a": [1, 2.5], "b": [3, 4], "c": [True, False], "extra": ["x", "y"]}
    got = shipyard_input(body({"columns": columns}), sig)
    pd.testing.assert_frame_equal(got, sig.enforce(pd.DataFrame(columns)))


@pytest.mark.parametrize(
    ("parse", "request_body", "error", "words"),
    [
        (shipyard, b"", BadRequest, "request body is empty"),
        (shipyard, b"{", BadRequest, "not valid JSON: Expecting property name"),
        (shipyard, b"\xff\xfe\x00", BadRequest, "not valid JSON"),
        (shipyard, b"[" * 100_000, BadRequest, "not valid JSON"),
        (shipyard, body([1]), BadRequest, "must be a JSON object, got an array"),
        (shipyard, body({}), BadRequest, "exactly one of records, columns, inputs"),
        (shipyard, body({"records": [], "columns": {}}), BadRequest, "got: records, columns"),
        (shipyard, body({"rows": ROWS}), BadRequest, "got: rows"),
        (
            shipyard,
            body({"records": RECORDS, "params": [1]}),
            BadRequest,
            "params must be an object",
        ),
        (shipyard, body({"records": {}}), BadRequest, "records must be a non-empty list"),
        (shipyard, body({"records": [RECORDS[0], 3]}), BadRequest, "records[1] must be an object"),
        (shipyard, body({"columns": []}), BadRequest, "columns must be a non-empty object"),
        (shipyard, body({"columns": {"a": 1}}), BadRequest, "columns['a'] must be a list"),
        (shipyard, body({"columns": {"a": [1], "b": [1, 2]}}), BadRequest, "a has 1, b has 2"),
        (shipyard, body({"columns": {"a": []}}), BadRequest, "columns has no rows"),
        (shipyard, body({"inputs": [[1, 2, 3, 4], 5]}), BadRequest, "inputs[1] must be a row"),
        (shipyard, body({"inputs": [[1, 2, 3]]}), BadInput, "inputs[0] has 3 values"),
        (shipyard, body({"records": [{"sepal length (cm)": 1}]}), BadInput, "missing columns"),
        (shipyard, body({"columns": {**COLUMNS, NAMES[1]: ["x", "y"]}}), BadInput, NAMES[1]),
        (shipyard, body({"columns": {**COLUMNS, NAMES[1]: [0.5, True]}}), BadInput, NAMES[1]),
        (mlflow, body({"dataframe_split": [1]}), BadRequest, "dataframe_split must be an object"),
        (mlflow, body({"dataframe_split": {"data": []}}), BadRequest, "dataframe_split.data"),
        (
            mlflow,
            body({"dataframe_split": {"columns": [1], "data": ROWS}}),
            BadRequest,
            "dataframe_split.columns must be a list of strings",
        ),
        (
            mlflow,
            body({"dataframe_split": {"columns": NAMES[:2], "data": ROWS}}),
            BadRequest,
            "dataframe_split.data[0] has 4 values, but there are 2 columns",
        ),
        (
            mlflow,
            body({"dataframe_split": {"data": ROWS, "index": [1]}}),
            BadRequest,
            "dataframe_split.index must be a list with one entry per row",
        ),
        (mlflow, body({"instances": "x"}), BadRequest, "instances must be a non-empty list"),
        (mlflow, body({"inputs": ROWS, "instances": ROWS}), BadRequest, "dataframe_records"),
        (mlflow_csv, b"", BadRequest, "not valid CSV"),
        (mlflow_csv, b"a,b\n", BadRequest, "no CSV rows"),
    ],
)
def test_malformed_shipyard_and_mlflow_requests(
    parse: Parse, request_body: bytes, error: type[InvalidInput], words: str
) -> None:
    with pytest.raises(error) as caught:
        parse(request_body, IRIS)
    assert type(caught.value) is error
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("request_body", "error", "words"),
    [
        (body({"inputs": [[1, 2], [3]]}), BadRequest, "inputs is not a rectangular array"),
        (body({"inputs": [[1, 2, 3]]}), BadInput, "size 3 in dimension 1, the model takes 4"),
        (body({"inputs": [[1.5, 2, 3, "x"]]}), BadInput, "the model takes float32"),
        (body({"inputs": [[1e300, 0, 0, 0]]}), BadInput, "the model takes float32"),
        (body({"inputs": {"a": ROWS, "b": ROWS}}), BadInput, "one tensor; inputs has 2"),
    ],
)
def test_malformed_tensor_requests(
    request_body: bytes, error: type[InvalidInput], words: str
) -> None:
    with pytest.raises(error) as caught:
        shipyard_input(request_body, TENSOR)
    assert words in caught.value.message


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;CHARSET="UTF-8"'],
)
def test_mlflow_json_content_types(content_type: str) -> None:
    got = mlflow_input(body({"instances": ROWS}), content_type, IRIS)
    pd.testing.assert_frame_equal(got, EXPECTED_FRAME)


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        (None, "unsupported content type None; send application/json or text/csv"),
        ("text/plain", "send application/json or text/csv"),
        ("application/json; charset=latin-1", "only with charset=utf-8"),
        ("application/json; format=pandas-split", "only with charset=utf-8"),
        ("text/csv; charset=utf-16", "only with charset=utf-8"),
    ],
)
def test_mlflow_refuses_other_content_types(content_type: str | None, words: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        mlflow_input(body({"instances": ROWS}), content_type, IRIS)
    assert caught.value.http_status == 415
    assert words in caught.value.message


V2_CASES = [
    ("BOOL", [True, False], "bool"),
    ("UINT8", [0, 255], "uint8"),
    ("UINT16", [0, 65535], "uint16"),
    ("UINT32", [0, 2**32 - 1], "uint32"),
    ("UINT64", [0, 2**64 - 1], "uint64"),  # numpy alone reads these as floats
    ("INT8", [-128, 127], "int8"),
    ("INT16", [-1, 2], "int16"),
    ("INT32", [-1, 2], "int32"),
    ("INT64", [-(2**63), 2**63 - 1], "int64"),
    ("FP16", [0.5, 1], "float16"),
    ("FP32", [0.5, 1], "float32"),
    ("FP64", [0.5, 1], "float64"),
    ("BYTES", ["a", "é"], "object"),
]


@pytest.mark.parametrize(("datatype", "data", "dtype"), V2_CASES)
def test_v2_datatypes_both_ways(datatype: str, data: list[Any], dtype: str) -> None:
    got = v2_input(v2([tensor("x", [2], datatype, data)]), None).data
    assert got.dtype == np.dtype(dtype)
    assert got.tolist() == data
    response = v2_response(
        got, model_name="m", model_version="1", request_id="r", output_names=None
    )
    assert response["outputs"] == [
        {"name": "predict", "shape": [2], "datatype": datatype, "data": data}
    ]
    assert V2_DATATYPES[datatype] == dtype


def test_v2_request_fields() -> None:
    request = v2_input(
        v2(
            [tensor("x", [1, 4], "FP64", ROWS[:1])], id="42", outputs=[{"name": "y"}], parameters={}
        ),
        IRIS,
    )
    assert isinstance(request, V2Request)
    assert (request.id, request.output_names) == ("42", ["y"])
    assert v2_input(v2([tensor("x", [1], "FP64", [1])]), None).id is None


@pytest.mark.parametrize(
    ("request_body", "error", "words"),
    [
        (
            v2([tensor("x", [3], "FP64", [1, 2])]),
            BadRequest,
            "input 'x': data has 2 elements, but shape [3] needs 3",
        ),
        (
            v2([tensor("x", [2, 2], "FP64", [[1, 2], [3]])]),
            BadRequest,
            "input 'x': data is not a rectangular",
        ),
        (
            v2([tensor("x", [-1], "FP64", [1])]),
            BadRequest,
            "input 'x': shape must be a list of non-negative",
        ),
        (v2([tensor("x", [1.0], "FP64", [1])]), BadRequest, "input 'x': shape"),
        (
            v2([tensor("x", [1], "FLOAT", [1])]),
            BadRequest,
            "input 'x': datatype must be one of BOOL",
        ),
        (
            v2([tensor("x", [1], "FP64", 1)]),
            BadRequest,
            "input 'x': data must be a list, got a number",
        ),
        (
            v2([tensor("x", [1], "INT32", [1.5])]),
            BadRequest,
            "input 'x': data must be INT32 values, got numbers",
        ),
        (
            v2([tensor("x", [1], "INT8", [300])]),
            BadRequest,
            "input 'x': data has values out of the range of INT8",
        ),
        (v2([tensor("x", [1], "FP16", [1e6])]), BadRequest, "out of the range of FP16"),
        (v2([tensor("x", [1], "FP32", [True])]), BadRequest, "must be FP32 values, got booleans"),
        (v2([tensor("x", [1], "BOOL", [1])]), BadRequest, "must be BOOL values, got integers"),
        (v2([tensor("x", [1], "BYTES", [1])]), BadRequest, "input 'x': data must be strings"),
        (v2([tensor("x", [1], "FP64", ["1"])]), BadRequest, "got strings"),
        (
            v2([{**tensor("x", [1], "FP64", [1]), "parameters": 1}]),
            BadRequest,
            "input 'x': parameters must be an object",
        ),
        (
            v2([{"shape": [1], "datatype": "FP64", "data": [1]}]),
            BadRequest,
            "inputs[0].name must be a string",
        ),
        (
            v2([tensor("x", [1], "FP64", [1])] * 2),
            BadRequest,
            "inputs[1]: the name 'x' is used twice",
        ),
        (v2([3]), BadRequest, "inputs[0] must be an object"),
        (v2([]), BadRequest, "inputs must be a non-empty list"),
        (v2([tensor("x", [1], "FP64", [1])], id=5), BadRequest, "id must be a string"),
        (
            v2([tensor("x", [1], "FP64", [1])], parameters=[]),
            BadRequest,
            "parameters must be an object",
        ),
        (
            v2([tensor("x", [1], "FP64", [1])], outputs=[{}]),
            BadRequest,
            "outputs must be a list of objects",
        ),
        (v2([tensor("x", [1, 3], "FP64", [[1, 2, 3]])]), BadInput, "expected 4 columns"),
        (
            v2([tensor("x", [1, 4], "BYTES", [["a"] * 4])]),
            BadInput,
            "model input has the wrong types",
        ),
        (
            v2([tensor(NAMES[0], [1], "FP64", [1]), tensor("z", [1], "FP64", [1])]),
            BadInput,
            "unknown inputs: z",
        ),
        (
            v2([tensor(NAMES[0], [1, 2], "FP64", [[1, 2]]), tensor(NAMES[1], [1], "FP64", [1])]),
            BadInput,
            f"input {NAMES[0]!r} has shape [1, 2]; a column is [N] or [N, 1]",
        ),
        (
            v2([tensor(n, [i + 1], "FP64", [1] * (i + 1)) for i, n in enumerate(NAMES)]),
            BadRequest,
            "input columns must all have the same length",
        ),
        (
            v2([tensor(n, [1], "FP64", [1]) for n in NAMES[:3]]),
            BadInput,
            "missing column petal width (cm)",
        ),
        (
            v2(
                [tensor(n, [1], "FP32", [1]) for n in NAMES[:3]]
                + [tensor(NAMES[3], [1], "BOOL", [True])]
            ),
            None,
            "",
        ),
    ],
)
def test_malformed_v2_requests(
    request_body: bytes, error: type[InvalidInput] | None, words: str
) -> None:
    if error is None:  # bool and float32 columns are widened to float64, as enforce does
        assert v2_input(request_body, IRIS).data.dtypes.tolist() == [np.dtype("float64")] * 4
        return
    with pytest.raises(error) as caught:
        v2_input(request_body, IRIS)
    assert type(caught.value) is error
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        (
            v2([tensor("a", [1, 4], "FP32", [ROWS[0]]), tensor("b", [1], "FP32", [1])]),
            "one tensor, got 2: a, b",
        ),
        (
            v2([tensor("a", [1, 4], "FP64", [ROWS[0]])]),
            "model input is float64, the model takes float32",
        ),
        (v2([tensor("a", [4], "FP32", ROWS[0])]), "has 1 dimension, the model takes 2"),
    ],
)
def test_v2_tensor_model_mismatches(request_body: bytes, words: str) -> None:
    with pytest.raises(BadInput) as caught:
        v2_input(request_body, TENSOR)
    assert words in caught.value.message


@pytest.mark.parametrize("header", ["0", "1234"])
def test_refuse_binary(header: str) -> None:
    with pytest.raises(BadRequest, match=r"binary_data=False in tritonclient"):
        refuse_binary(header)
    refuse_binary(None)


def test_v2_response_forms() -> None:
    def outputs(predictions: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
        response = v2_response(
            predictions, model_name="m", model_version="2", request_id=None, output_names=names
        )
        assert (response["model_name"], response["model_version"]) == ("m", "2")
        assert isinstance(response["id"], str) and response["id"]  # the spec requires one
        return response["outputs"]

    assert outputs([[1.5, float("nan")]], ["predict"]) == [
        {"name": "predict", "shape": [1, 2], "datatype": "FP64", "data": [1.5, None]}
    ]
    assert outputs(pd.Series(["a", "b"])) == [
        {"name": "predict", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}
    ]
    with pytest.raises(BadRequest, match=r"does not produce label \(only predict\)"):
        outputs([1, 2], ["label"])  # a single output is always "predict", as metadata says
    frame = pd.DataFrame({"p": np.array([0.25, 0.75], "float32"), "label": [0, 1]})
    assert outputs(frame) == [
        {"name": "p", "shape": [2], "datatype": "FP32", "data": [0.25, 0.75]},
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [0, 1]},
    ]
    assert [o["name"] for o in outputs(frame, ["label"])] == ["label"]
    with pytest.raises(BadRequest, match=r"does not produce nope \(only p, label\)"):
        outputs(frame, ["nope"])
    assert outputs(pd.Series([1, None], dtype="Int64"))[0]["data"] == [1, None]


def test_v2_metadata() -> None:
    meta = v2_metadata("iris", ["1", "2"], IRIS, "sklearn")
    assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in NAMES]
    assert (meta["name"], meta["versions"], meta["platform"]) == ("iris", ["1", "2"], "sklearn")
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    meta = v2_metadata("t", ["1"], TENSOR, "onnx", output_datatype="INT64")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"][0]["datatype"] == "INT64"
    text = Signature((ColumnSpec("s", "string"), ColumnSpec("t", "datetime")))
    assert [i["datatype"] for i in v2_metadata("x", [], text, "p")["inputs"]] == ["BYTES"] * 2
    assert v2_metadata("x", [], None, "p")["inputs"] == []


@pytest.mark.parametrize(
    ("predictions", "expected"),
    [
        (np.array([0.5, np.nan, np.inf]), [0.5, None, None]),
        (np.array([[1, 2]], "int32"), [[1, 2]]),
        (np.float32(0.5), 0.5),
        (pd.Series([1.0, np.nan]), [1.0, None]),
        (pd.DataFrame({"a": [1, 2], "b": ["x", None]}), [{"a": 1, "b": "x"}, {"a": 2, "b": None}]),
        (pd.Series(np.array(["2024-01-02"], "datetime64[us]")), ["2024-01-02T00:00:00.000000"]),
        ({"k": [float("nan"), np.int64(3)]}, {"k": [None, 3]}),
        (np.array(["a", None], object), ["a", None]),
    ],
)
def test_predictions_json(predictions: Any, expected: Any) -> None:
    assert predictions_json(predictions) == expected
    assert json.loads(encode({"predictions": predictions})) == {"predictions": expected}


def test_encode_is_compact_and_refuses_unknown_objects() -> None:
    assert encode({"predictions": [1, 2], "x": np.int64(3)}) == b'{"predictions":[1,2],"x":3}'
    assert encode({"p": [float("nan")]}) == b'{"p":[null]}'
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        encode({"p": object()})


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest, 400, "BAD_REQUEST"),
        (BadInput, 422, "UNPROCESSABLE"),
        (PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
        (UnsupportedMediaType, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_errors_carry_their_status(error: type[InvalidInput], status: int, code: str) -> None:
    assert issubclass(error, InvalidInput)
    assert (error.http_status, error.code) == (status, code)


def test_read_json() -> None:
    assert read_json(b' {"a": [1, NaN]} ')["a"][0] == 1
    with pytest.raises(BadRequest, match=r"line 1 column 2"):
        read_json(b"{,}")


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

PARSERS: list[Callable[[bytes, Signature | None], Any]] = [
    lambda b, sig: read_json(b),
    shipyard,
    mlflow,
    mlflow_csv,
    v2_data,
]
SIGNATURES = [IRIS, TENSOR, MIXED, None]
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3)
NUMBERS = st.integers(-300, 300) | st.floats()
COLUMN_NAMES = st.sampled_from([*NAMES, "f32", "i8", "flag", "name", "x"]) | st.text(max_size=3)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(COLUMN_NAMES, inner, max_size=5),
    max_leaves=12,
)
NUMBER_ROWS = st.lists(st.lists(st.integers() | st.floats(), min_size=4, max_size=4), max_size=3)
KEYS = ["records", "columns", "inputs", "dataframe_split", "dataframe_records", "instances"]
TENSORS = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*NAMES, "x"]),
        "shape": st.lists(st.integers(0, 4), max_size=3),
        "datatype": st.sampled_from(list(V2_DATATYPES)),
        "data": JSON_VALUES | NUMBER_ROWS | st.lists(SCALARS, max_size=8),
    }
)
KINDS_OF_DATA = [  # element strategies with the datatypes they fit, and one they may not
    (NUMBERS, ["INT8", "INT64", "UINT8", "FP16", "FP64"]),
    (st.floats(), ["FP32", "FP64", "INT32"]),
    (st.booleans(), ["BOOL", "FP32"]),
    (st.text(max_size=2), ["BYTES", "FP64"]),
]
FITTING_TENSORS = st.tuples(st.lists(st.integers(1, 4), max_size=2), st.sampled_from(KINDS_OF_DATA))
FITTING_TENSORS = FITTING_TENSORS.flatmap(
    lambda shape_kind: st.fixed_dictionaries(
        {
            "name": st.sampled_from([*NAMES, "x"]),
            "shape": st.just(shape_kind[0]),
            "datatype": st.sampled_from(shape_kind[1][1]),
            "data": st.lists(
                shape_kind[1][0],
                min_size=math.prod(shape_kind[0]),
                max_size=math.prod(shape_kind[0]),
            ),
        }
    )
)
REQUESTS = (
    st.dictionaries(st.sampled_from(KEYS), JSON_VALUES | NUMBER_ROWS, min_size=1, max_size=2)
    | st.fixed_dictionaries(
        {
            "inputs": st.lists(FITTING_TENSORS, min_size=1, max_size=4)
            | st.lists(TENSORS, min_size=1, max_size=2)
        }
    )
    | st.fixed_dictionaries(
        {"dataframe_split": st.fixed_dictionaries({"data": JSON_VALUES | NUMBER_ROWS})}
    )
).map(lambda obj: json.dumps(obj).encode())
CSV_BODIES = st.lists(
    st.lists(st.sampled_from(["1", "2.5", "", "x", '"', "1e400", NAMES[0]]), max_size=5),
    max_size=4,
).map(lambda rows: "\n".join(",".join(r) for r in rows).encode())


def _only_invalid_input(parse: Any, request_body: bytes, sig: Signature | None) -> None:
    with contextlib.suppress(InvalidInput):
        parse(request_body, sig)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    request_body=st.binary(max_size=64) | REQUESTS | CSV_BODIES,
    parse=st.sampled_from(PARSERS),
    sig=st.sampled_from(SIGNATURES),
)
def test_any_bytes_raise_nothing_but_invalid_input(
    request_body: bytes, parse: Any, sig: Signature | None
) -> None:
    _only_invalid_input(parse, request_body, sig)
