"""Binding decoded records to a model's declared inputs by name (modelstream.binding): casts, shapes,
input_fields, WineRecord's fixed order, optional inputs, and a failure per row that cannot bind."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from modelstream.binding import Binder, Bound, synthesized_inputs
from modelstream.codecs import Decoded
from modelstream.codecs.json import JsonCodec
from modelstream.codecs.oip import OipCodec
from modelstream.codecs.protobuf import UserSchemas
from modelstream.codecs.wine import WineCodec
from modelstream.contract import InputSpec, ModelOptions
from modelstream.deadletters import Reason
from modelstream.records import WINE
from modelstream.registry import load_model
from modelstream.settings import PROJECT_ROOT
from modelstream.testing import source_record
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor, WineRecord
from protobufs.open_inference_pb2 import ModelInferRequest

F32, F64, I32, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int64)
BOOL, TEXT = np.dtype(np.bool_), np.dtype(object)


def json_rows(*rows: dict[str, Any]) -> Decoded:
    records = [source_record(orjson.dumps(row), Encoding.JSON, offset=i) for i, row in enumerate(rows)]
    return JsonCodec().decode(records, UserSchemas())


def oip_rows(**tensors: np.ndarray[Any, Any]) -> Decoded:
    """One request of the given tensors (FP64, FP32, INT64 or BYTES), raw contents."""
    names = {"f8": "FP64", "f4": "FP32", "i8": "INT64", "i4": "INT32", "b1": "BOOL"}
    request = ModelInferRequest(id="req")
    for name, array in tensors.items():
        request.inputs.add(name=name, datatype=names[array.dtype.str[1:]], shape=array.shape)
        request.raw_input_contents.append(array.astype(array.dtype.newbyteorder("<")).tobytes())
    return OipCodec().decode([source_record(request.SerializeToString(), Encoding.OIP)], UserSchemas())


def wine_rows(*records: WineRecord) -> Decoded:
    values = [source_record(r.SerializeToString(), offset=i) for i, r in enumerate(records)]
    return WineCodec().decode(values, UserSchemas())


def errors(bound: Bound) -> dict[int | None, str]:
    assert all(f.reason == Reason.RECORD_INVALID for f in bound.failures)
    return {f.record.offset: f.message for f in bound.failures}


def bind(decoded: Decoded, *inputs: InputSpec, input_fields: tuple[str, ...] = ()) -> Bound:
    return Binder(inputs, input_fields).bind(decoded)


# -- names, casts and shapes -------------------------------------------------------------------------


def test_fields_bind_by_exact_name_first_then_loosely_and_extra_fields_are_ignored() -> None:
    decoded = json_rows({"age": 1, "Age": 2, "Fixed Acidity": 7.5, "unused": "x", "nested": {"a": 1}})
    bound = bind(decoded, InputSpec("age", F32), InputSpec("fixed_acidity", F64), InputSpec("AGE", I64))
    assert not bound.failures and bound.rows.tolist() == [0]
    assert bound.arrays["age"].tolist() == [1.0] and bound.arrays["fixed_acidity"].tolist() == [7.5]
    assert bound.arrays["AGE"].tolist() == [2]  # no field "AGE": loosely, the first name in sorted order
    assert set(bound.arrays) == {"age", "fixed_acidity", "AGE"}


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        (F32, [1, 2.5, -3], [1.0, 2.5, -3.0]),
        (F64, [1, 0.1], [1.0, 0.1]),
        (I64, [1, 2.0, -(2**62)], [1, 2, -(2**62)]),
        (I32, [7, -7], [7, -7]),
        (BOOL, [True, False], [True, False]),
        (TEXT, ["a", "", "ü"], ["a", "", "ü"]),
    ],
)
def test_json_scalars_are_cast_to_the_input_type(
    dtype: np.dtype[Any], values: list[Any], expected: list[Any]
) -> None:
    bound = bind(json_rows(*({"x": v} for v in values)), InputSpec("x", dtype))
    assert not bound.failures
    array = bound.arrays["x"]
    assert array.dtype == dtype and array.shape == (len(values),) and array.tolist() == expected


def test_oip_tensors_are_cast_to_the_input_type() -> None:
    decoded = oip_rows(
        a=np.array([1.5, 2.0]),
        b=np.array([3, 4], dtype=np.int64),
        c=np.array([5.0, -6.0]),
        d=np.array([1, 0], "?"),
    )
    bound = bind(decoded, InputSpec("a", F32), InputSpec("b", F32), InputSpec("c", I64), InputSpec("d", BOOL))
    assert not bound.failures
    assert [(bound.arrays[n].dtype, bound.arrays[n].tolist()) for n in "abcd"] == [
        (F32, [1.5, 2.0]),
        (F32, [3.0, 4.0]),
        (I64, [5, -6]),
        (BOOL, [True, False]),
    ]


def test_a_scalar_per_record_binds_as_n_or_n_by_1() -> None:
    for decoded, field in ((json_rows({"x": 1}, {"x": 2}), "x"), (oip_rows(x=np.array([1.0, 2.0])), "x")):
        column = bind(decoded, InputSpec(field, F32, (1,))).arrays[field]
        flat = bind(decoded, InputSpec(field, F32, ())).arrays[field]
        assert (column.shape, column.tolist(), flat.shape) == ((2, 1), [[1.0], [2.0]], (2,))
    from_column = bind(oip_rows(x=np.array([[1.0], [2.0]])), InputSpec("x", F32, ()))
    assert from_column.arrays["x"].tolist() == [1.0, 2.0]


def test_arrays_of_k_numbers_bind_as_n_by_k() -> None:
    decoded = json_rows({"v": [1, 2, 3]}, {"v": [4.5, 5, 6]})
    for shape in ((3,), (None,)):
        bound = bind(decoded, InputSpec("v", F32, shape))
        assert not bound.failures and bound.arrays["v"].tolist() == [[1, 2, 3], [4.5, 5, 6]]
    matrix = bind(json_rows({"m": [[1, 2], [3, 4]]}), InputSpec("m", I64, (2, 2)))
    assert matrix.arrays["m"].dtype == I64 and matrix.arrays["m"].tolist() == [[[1, 2], [3, 4]]]
    # a dimension of any size still has one size in a batch: the first good row's
    ragged = bind(json_rows({"v": [1, 2]}, {"v": [1, 2, 3]}, {"v": [3, 4]}), InputSpec("v", F32, (None,)))
    assert ragged.rows.tolist() == [0, 2] and ragged.arrays["v"].tolist() == [[1, 2], [3, 4]]
    assert errors(ragged) == {1: "field v has shape [n, 3], expected [n, 2]"}


# -- input_fields and the fixed WineRecord order -----------------------------------------------------


def test_input_fields_stack_scalar_fields_in_their_order() -> None:
    decoded = json_rows(
        {"a": 1, "b": 2.5, "c": 3, "extra": 0}, {"a": 4, "b": None, "c": 6}, {"a": 7, "b": 8, "c": 9}
    )
    x = InputSpec("X", F32, (3,))
    bound = bind(decoded, x, input_fields=("c", "a", "b"))
    assert bound.rows.tolist() == [0, 2] and bound.arrays["X"].tolist() == [[3, 1, 2.5], [9, 7, 8]]
    assert errors(bound) == {1: "field b is null, expected float32"}
    any_width = bind(decoded, InputSpec("X", F32, (None,)), input_fields=("c", "a", "b"))
    assert any_width.arrays["X"].shape == (2, 3)

    missing = bind(decoded, x, input_fields=("a", "b", "d"))
    assert len(missing.rows) == 0 and missing.arrays == {}
    assert set(errors(missing).values()) == {"missing field d (records have: a, b, c, extra)"}
    wrong_width = bind(decoded, x, input_fields=("a", "b"))
    assert set(errors(wrong_width).values()) == {"input X float32[n, 3] cannot take the 2 input_fields"}


def test_wine_records_feed_an_unnamed_vector_input_their_features_in_order() -> None:
    records = [
        WineRecord(fixed_acidity=7.4, alcohol=9.4),
        WineRecord(alcohol=float("nan")),
        WineRecord(pH=3.5),
    ]
    decoded = wine_rows(*records)
    for shape in ((11,), (None,)):
        bound = bind(decoded, InputSpec("X", F32, shape))
        assert bound.rows.tolist() == [0, 2] and bound.arrays["X"].shape == (2, 11)
        assert (
            bound.arrays["X"][0, 0] == np.float32(7.4)
            and bound.arrays["X"][1, WINE.features.index("pH")] == 3.5
        )
        assert errors(bound) == {1: "field alcohol is not a finite number"}
    named = bind(decoded, InputSpec("pH", F64), InputSpec("fixed acidity", F64))
    assert named.arrays["pH"].tolist() == [0.0, 0.0, 3.5] and not named.failures
    wrong_width = bind(decoded, InputSpec("X", F32, (4,)))
    assert "missing field X" in errors(wrong_width)[0]


# -- per-row failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        (InputSpec("x", F32), "MISSING", "missing field x"),
        (InputSpec("x", F32), None, "field x is null, expected float32"),
        (InputSpec("x", F32), "7", "field x is a string, expected float32"),
        (InputSpec("x", F32), True, "field x is a bool, expected float32"),
        (InputSpec("x", F32), [1.0], "field x is an array, expected float32"),
        (InputSpec("x", I64), 2.5, "field x is a number, expected int64"),
        (InputSpec("x", I32), 2**40, "field x is a number, expected int32"),
        (InputSpec("x", BOOL), 1, "field x is a number, expected bool"),
        (InputSpec("x", TEXT), 1, "field x is a number, expected string"),
        (InputSpec("x", F32), 1e39, "field x is not a finite number"),  # beyond float32
        (InputSpec("x", F32, (3,)), [1, 2], "field x has shape [n, 2], expected [n, 3]"),
        (InputSpec("x", F32, (3,)), 5, "field x is a number, expected an array of float32 [n, 3]"),
        (InputSpec("x", F32, (2,)), [1, "a"], "field x is an array, expected an array of float32 [n, 2]"),
        (InputSpec("x", I64, (2,)), [1, 2.5], "field x is not a whole number int64 can hold, expected int64"),
        (InputSpec("x", F32, (2,)), None, "field x is null, expected an array of float32 [n, 2]"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e39 as float32
def test_a_row_that_cannot_feed_an_input_fails_alone_naming_the_field(
    spec: InputSpec, value: Any, message: str
) -> None:
    good: Any = (
        {BOOL: True, TEXT: "a"}.get(spec.dtype, 1) if not spec.shape else list(range(spec.shape[0] or 1))
    )
    bad: dict[str, Any] = {"id": 1} if value == "MISSING" else {"id": 1, "x": value}
    bound = bind(json_rows({"id": 0, "x": good}, bad, {"id": 2, "x": good}), spec)
    assert bound.rows.tolist() == [0, 2] and len(bound.arrays["x"]) == 2
    assert errors(bound) == {1: message}


def test_non_finite_and_inexact_numbers_in_tensors_fail_their_rows() -> None:
    decoded = oip_rows(
        f=np.array([1.0, np.nan, 2.0, 3.0]),
        i=np.array([1.0, 2.0, 2.5, 4.0]),
        v=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [np.inf, 0.0]]),
    )
    bound = bind(decoded, InputSpec("f", F32), InputSpec("i", I64), InputSpec("v", F32, (2,)))
    assert [f.message for f in bound.failures] == [
        "field f is not a finite number",
        "field i is not a whole number int64 can hold, expected int64",
        "field v is not a finite number",
    ]
    assert bound.rows.tolist() == [0] and bound.arrays["i"].tolist() == [1]
    too_big = bind(oip_rows(n=np.array([1, 2**40], dtype=np.int64)), InputSpec("n", I32))
    assert [f.message for f in too_big.failures] == [
        "field n is not a whole number int32 can hold, expected int32"
    ]
    text = bind(oip_rows(n=np.array([1.0])), InputSpec("n", TEXT))
    assert [f.message for f in text.failures] == ["field n is float64, expected string"]


def test_a_required_onnx_input_a_json_record_lacks_fails_that_record_naming_the_field() -> None:
    onnx = (PROJECT_ROOT / "data" / "loans" / "loans_pipeline_nozipmap.onnx").read_bytes()
    model = load_model(ModelDescriptor(modeltype=ModelDescriptor.ONNX, data=onnx), ModelOptions())
    row = {"age": 30, "income": 1e4, "loan_amount": 5e3, "term_months": 36, "credit_score": 700,
           "employment": "retired", "purpose": "car", "region": "north"}  # fmt: skip
    lacking = {k: v for k, v in row.items() if k != "credit_score"}
    bound = Binder(model.inputs).bind(json_rows(row, lacking, row))
    assert bound.rows.tolist() == [0, 2]
    assert errors(bound) == {1: "missing field credit_score"}
    none_have_it = Binder(model.inputs).bind(json_rows(lacking))
    assert errors(none_have_it)[0].startswith("missing field credit_score (records have: age, employment,")
    assert model.score_batch(bound.arrays).labels is not None


# -- optional (PMML) inputs --------------------------------------------------------------------------


def test_optional_inputs_take_the_missing_value_where_a_record_lacks_the_field() -> None:
    decoded = json_rows({"x": 1.5, "s": "a"}, {"x": None, "s": None}, {"s": 7}, {"x": 2})
    bound = bind(decoded, InputSpec("x", F64, optional=True), InputSpec("s", TEXT, optional=True))
    assert not bound.failures
    x, s = bound.arrays["x"], bound.arrays["s"]
    assert x[0] == 1.5 and np.isnan(x[1:3]).all() and x[3] == 2.0
    assert s.tolist() == ["a", None, "7", None]  # a categorical number as text
    absent = bind(decoded, InputSpec("never", F64, optional=True), InputSpec("gone", TEXT, optional=True))
    assert np.isnan(absent.arrays["never"]).all() and absent.arrays["gone"].tolist() == [None] * 4
    infinite = bind(oip_rows(x=np.array([np.inf, np.nan])), InputSpec("x", F64, optional=True))
    assert [f.message for f in infinite.failures] == ["field x is not a finite number"]


def test_the_probe_made_up_from_declared_inputs() -> None:
    arrays = synthesized_inputs(
        (
            InputSpec("a", F32, (None,)),
            InputSpec("b", TEXT, (1,)),
            InputSpec("c", I64),
            InputSpec("d", BOOL, (2, 3)),
        )
    )
    assert {k: (v.dtype, v.shape) for k, v in arrays.items()} == {
        "a": (F32, (1, 1)),
        "b": (TEXT, (1, 1)),
        "c": (I64, (1,)),
        "d": (BOOL, (1, 2, 3)),
    }
    assert arrays["b"].tolist() == [[""]] and not arrays["d"].any()
