"""The committed loans and digits data sets and models (scripts/make_datasets.py); no Kafka, no Flink."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from sklearn.datasets import load_digits

from scripts import make_datasets as md

PMML_NS = {"p": "http://www.dmg.org/PMML-4_4"}


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    return md.read_loans(md.LOANS_CSV)


def session(path: Any) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_the_files_are_small_and_the_record_ids_unique(loans: pd.DataFrame) -> None:
    for path in (md.LOANS_CSV, md.LOANS_ONNX, md.LOANS_ONNX_NOZIPMAP, md.LOANS_PMML, md.LOANS_DESC):
        assert 0 < path.stat().st_size < 1_000_000, path
    assert 0 < md.DIGITS_JSONL.stat().st_size < 1_100_000
    assert list(loans.columns) == list(md.CSV_COLUMNS)
    assert len(loans) == md.LOAN_ROWS and loans["record_id"].is_unique
    for column, categories in md.CATEGORIES.items():
        assert set(loans[column]) == set(categories), column
    assert set(loans[md.LABEL]) == set(md.CLASSES)


def test_the_loans_csv_is_what_the_seeded_generator_makes(loans: pd.DataFrame) -> None:
    assert md.LOANS_CSV.read_text() == md.loans_csv(md.synthetic_loans())


def test_the_loans_pipeline_has_one_typed_input_per_column() -> None:
    expected = {c: "tensor(float)" for c in md.FLOAT_COLUMNS}
    expected |= {c: "tensor(int64)" for c in md.INT_COLUMNS}
    expected |= {c: "tensor(string)" for c in md.CATEGORICAL_COLUMNS}
    for path in (md.LOANS_ONNX, md.LOANS_ONNX_NOZIPMAP):
        inputs = session(path).get_inputs()
        assert {i.name: i.type for i in inputs} == expected
        assert all(i.shape[1] == 1 for i in inputs)


def test_the_loans_pipeline_is_accurate_with_and_without_zipmap(loans: pd.DataFrame) -> None:
    feeds = md.loans_onnx_inputs(loans)
    label, maps = session(md.LOANS_ONNX).run(None, feeds)
    label_nz, probabilities = session(md.LOANS_ONNX_NOZIPMAP).run(None, feeds)
    assert md.accuracy(label, loans[md.LABEL]) > 0.7
    assert list(label) == list(label_nz)
    assert probabilities.shape == (len(loans), 2)
    zipped = np.array([[m[c] for c in md.CLASSES] for m in maps], dtype=np.float32)
    np.testing.assert_allclose(zipped, probabilities, rtol=1e-6, atol=1e-7)


def test_the_loans_pipeline_scores_an_unseen_category(loans: pd.DataFrame) -> None:
    feeds = md.loans_onnx_inputs(loans.head(3))
    feeds["purpose"] = np.array([["boat"]] * 3, dtype=object)
    label, probabilities = session(md.LOANS_ONNX_NOZIPMAP).run(None, feeds)
    assert set(label) <= set(md.CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_pmml_tree_names_the_columns_and_agrees_with_the_onnx_pipeline(loans: pd.DataFrame) -> None:
    from jpmml_evaluator import make_evaluator

    root = ET.parse(md.LOANS_PMML).getroot()
    fields = {f.get("name"): f for f in root.iterfind("p:DataDictionary/p:DataField", PMML_NS)}
    mining = [f.get("name") for f in root.iterfind("p:TreeModel/p:MiningSchema/p:MiningField", PMML_NS)]
    assert mining == [md.LABEL, *md.FEATURE_COLUMNS]
    for column in md.CATEGORICAL_COLUMNS:
        assert (fields[column].get("optype"), fields[column].get("dataType")) == ("categorical", "string")

    evaluator = make_evaluator(str(md.LOANS_PMML), backend="jpype").verify()
    assert [f.getName() for f in evaluator.getInputFields()] == list(md.FEATURE_COLUMNS)
    scored = evaluator.evaluateAll(loans[list(md.FEATURE_COLUMNS)])
    assert len(scored) == len(loans) and scored[md.LABEL].notna().all()
    np.testing.assert_allclose(scored["probability(no)"] + scored["probability(yes)"], 1.0)
    assert md.accuracy(scored[md.LABEL].to_numpy(), loans[md.LABEL]) > 0.7
    onnx_label = session(md.LOANS_ONNX).run(["output_label"], md.loans_onnx_inputs(loans))[0]
    assert md.accuracy(scored[md.LABEL].to_numpy(), onnx_label) > 0.8
    # the same classes as the scikit-learn tree it was written from
    tree = md.train_loans_tree(loans)
    assert md.accuracy(scored[md.LABEL].to_numpy(), tree.predict(loans[list(md.FEATURE_COLUMNS)])) > 0.99
    unseen = evaluator.evaluate({**loans.iloc[0][list(md.FEATURE_COLUMNS)].to_dict(), "purpose": "boat"})
    assert unseen[md.LABEL] in md.CLASSES


def test_the_digits_jsonl_holds_the_bundled_digits() -> None:
    records = [json.loads(line) for line in md.DIGITS_JSONL.read_text().splitlines()]
    images = load_digits().data
    assert len(records) == len(images)
    assert records[0]["record_id"] == "digit-0000" and records[0]["dataType"] == "digits"
    assert len({r["record_id"] for r in records}) == len(records)
    np.testing.assert_array_equal(np.array([r["pixels"] for r in records]), images)


def test_the_digits_mlp_is_accurate() -> None:
    digits = load_digits()
    model = session(md.DIGITS_ONNX)
    assert [(i.name, i.type, i.shape[1]) for i in model.get_inputs()] == [("pixels", "tensor(float)", 64)]
    label, probabilities = model.run(None, {"pixels": digits.data.astype(np.float32)})
    assert label.dtype == np.int64 and probabilities.shape == (len(label), 10)
    assert float(np.mean(label == digits.target)) > 0.9


def test_the_descriptor_set_round_trips_a_loans_row(loans: pd.DataFrame) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(md.LOANS_DESC.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)  # type: ignore[no-untyped-call]
    descriptor: Descriptor = pool.FindMessageTypeByName("loans.LoanApplication")  # type: ignore[no-untyped-call]
    assert descriptor.fields_by_name["data_type"].number == 11
    assert set(md.CSV_COLUMNS) | {"data_type"} == set(descriptor.fields_by_name)
    message_class = message_factory.GetMessageClass(descriptor)
    row = loans.iloc[1]
    values = {c: row[c].item() if hasattr(row[c], "item") else row[c] for c in md.CSV_COLUMNS}
    message = message_class(**values, data_type="loans")
    again = message_class.FromString(message.SerializeToString())
    assert again == message
    assert {c: getattr(again, c) for c in (*md.CSV_COLUMNS, "data_type")} == {**values, "data_type": "loans"}


def test_the_descriptor_set_is_current(tmp_path: Any) -> None:
    fresh = md.build_descriptor_set(md.LOANS_PROTO, tmp_path / "loans.desc")
    assert fresh.read_bytes() == md.LOANS_DESC.read_bytes()
