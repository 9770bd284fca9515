"""Make the tests' and the demo's loans and digits data sets and models, reproducibly.

    .venv/bin/python -m scripts.make_datasets [--desc-only]

Writes, with fixed seeds and from nothing downloaded:

- data/loans/loans.csv: seeded synthetic loan applications (numbers and categorical strings) with a
  yes/no label from a noisy rule;
- data/loans/loans_pipeline.onnx and loans_pipeline_nozipmap.onnx: a scikit-learn pipeline
  (one-hot + scaling + logistic regression) with one [None, 1] input per column, with and without ZipMap;
- data/loans/loans_tree.pmml: a decision tree on the same columns, written here as a PMML TreeModel;
- data/loans/loans.desc: the FileDescriptorSet of tests/protos/loans.proto (protoc in a subprocess);
- data/digits/digits.jsonl and digits_mlp.onnx: scikit-learn's bundled 8x8 digits and a small MLP.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

ROOT = Path(__file__).resolve().parent.parent
LOANS_DIR = ROOT / "data" / "loans"
DIGITS_DIR = ROOT / "data" / "digits"
LOANS_PROTO = ROOT / "tests" / "protos" / "loans.proto"

LOANS_CSV = LOANS_DIR / "loans.csv"
LOANS_ONNX = LOANS_DIR / "loans_pipeline.onnx"
LOANS_ONNX_NOZIPMAP = LOANS_DIR / "loans_pipeline_nozipmap.onnx"
LOANS_PMML = LOANS_DIR / "loans_tree.pmml"
LOANS_DESC = LOANS_DIR / "loans.desc"
DIGITS_JSONL = DIGITS_DIR / "digits.jsonl"
DIGITS_ONNX = DIGITS_DIR / "digits_mlp.onnx"

SEED = 20240501
LOAN_ROWS = 2000
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

FLOAT_COLUMNS = ("age", "income", "loan_amount")  # float inputs of the ONNX pipeline
INT_COLUMNS = ("term_months", "credit_score")  # int64 inputs of the ONNX pipeline
NUMERIC_COLUMNS = FLOAT_COLUMNS + INT_COLUMNS
INTEGER_COLUMNS = ("age", "term_months", "credit_score")  # integers in the CSV
CATEGORIES: dict[str, tuple[str, ...]] = {
    "employment": ("salaried", "self-employed", "unemployed", "retired"),
    "purpose": ("car", "home", "education", "business"),
    "region": ("north", "south", "east", "west"),
}
CATEGORICAL_COLUMNS = tuple(CATEGORIES)
FEATURE_COLUMNS = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
LABEL = "approved"
CLASSES = ("no", "yes")
CSV_COLUMNS = ("record_id", *FEATURE_COLUMNS, LABEL)


def synthetic_loans(rows: int = LOAN_ROWS, seed: int = SEED) -> pd.DataFrame:
    """Seeded synthetic loan applications; ``approved`` follows a linear rule plus logistic noise."""
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 76, rows)
    employment = rng.choice(4, rows, p=[0.6, 0.22, 0.1, 0.08])
    employment[(age >= 62) & (rng.random(rows) < 0.6)] = 3  # retired
    purpose = rng.choice(4, rows, p=[0.35, 0.25, 0.2, 0.2])
    region = rng.choice(4, rows)
    income = rng.lognormal(np.log(52_000), 0.45, rows) * np.array([1.0, 1.1, 0.35, 0.6])[employment]
    loan_amount = rng.lognormal(0.0, 0.4, rows) * np.array([18_000, 60_000, 25_000, 40_000])[purpose]
    term_months = rng.choice([12, 24, 36, 48, 60], rows)
    credit_score = np.clip(np.rint(rng.normal(670, 75, rows)), 300, 850).astype(np.int64)
    income, loan_amount = np.round(income, 2), np.round(loan_amount, 2)
    z = (
        0.03 * (credit_score - 660)
        + 0.00004 * (income - 50_000)
        - 0.00003 * (loan_amount - 35_000)
        - 0.01 * (term_months - 36)
        + np.array([0.5, 0.0, -1.5, -0.2])[employment]
        + np.array([0.2, 0.4, 0.0, -0.4])[purpose]
        + np.array([0.1, -0.1, 0.0, 0.0])[region]
        + rng.logistic(0.0, 0.7, rows)
    )

    def names(column: str, codes: np.ndarray[Any, Any]) -> list[str]:
        return [CATEGORIES[column][c] for c in codes]

    return pd.DataFrame(
        {
            "record_id": [f"loan-{i:04d}" for i in range(rows)],
            "age": age.astype(np.int64),
            "income": income,
            "loan_amount": loan_amount,
            "term_months": term_months.astype(np.int64),
            "credit_score": credit_score,
            "employment": names("employment", employment),
            "purpose": names("purpose", purpose),
            "region": names("region", region),
            LABEL: np.where(z > 0, "yes", "no"),
        },
        columns=list(CSV_COLUMNS),
    )


def loans_csv(frame: pd.DataFrame) -> str:
    """The CSV text of the loans: a header, integers as such, money with two decimals."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in frame.itertuples(index=False):
        values = row._asdict()
        writer.writerow(
            f"{values[c]:.2f}" if c in ("income", "loan_amount") else str(values[c]) for c in CSV_COLUMNS
        )
    return out.getvalue()


def read_loans(path: Path = LOANS_CSV) -> pd.DataFrame:
    """The loans CSV with integer columns as int64, money as float64 and the rest as strings."""
    dtypes: dict[str, Any] = {c: "int64" for c in INTEGER_COLUMNS}
    dtypes.update({"income": "float64", "loan_amount": "float64"})
    dtypes.update({c: str for c in ("record_id", *CATEGORICAL_COLUMNS, LABEL)})
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False)


def loans_onnx_inputs(frame: pd.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
    """The ONNX pipeline's feeds for the rows of ``frame``: one [n, 1] array per column."""
    feeds: dict[str, np.ndarray[Any, Any]] = {}
    for column in FEATURE_COLUMNS:
        values = frame[column].to_numpy()
        if column in FLOAT_COLUMNS:
            values = values.astype(np.float32)
        elif column in INT_COLUMNS:
            values = values.astype(np.int64)
        else:
            values = values.astype(object)
        feeds[column] = values.reshape(-1, 1)
    return feeds


def train_loans_pipeline(frame: pd.DataFrame) -> Pipeline:
    """One-hot categoricals and standardized numerics into a logistic regression, fitted."""
    encode = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_COLUMNS)),
            ("num", StandardScaler(), list(NUMERIC_COLUMNS)),
        ]
    )
    pipeline = Pipeline([("encode", encode), ("classify", LogisticRegression(max_iter=1000))])
    pipeline.fit(frame[list(FEATURE_COLUMNS)], frame[LABEL])
    return pipeline


def _serialize(onx: Any) -> bytes:
    """The model's bytes with its opset imports sorted (skl2onnx's order varies with the hash seed)."""
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in opsets:
        onx.opset_import.add(domain=domain, version=version)
    data: bytes = onx.SerializeToString()
    return data


def loans_onnx(pipeline: Pipeline, zipmap: bool) -> bytes:
    """The ONNX bytes of the loans pipeline: one [None, 1] input per column, ZipMap as asked."""
    types: list[tuple[str, Any]] = []
    for column in FEATURE_COLUMNS:
        if column in FLOAT_COLUMNS:
            types.append((column, FloatTensorType([None, 1])))
        elif column in INT_COLUMNS:
            types.append((column, Int64TensorType([None, 1])))
        else:
            types.append((column, StringTensorType([None, 1])))
    options = None if zipmap else {"zipmap": False}
    onx = to_onnx(pipeline, initial_types=types, options=options, target_opset=TARGET_OPSET)
    meta = onx.metadata_props.add()
    meta.key, meta.value = "classes", ",".join(str(c) for c in pipeline.classes_)
    shape = "ZipMap" if zipmap else "no ZipMap"
    onx.doc_string = f"loans approval, one-hot + StandardScaler + LogisticRegression ({shape})"
    return _serialize(onx)


def train_loans_tree(frame: pd.DataFrame) -> Pipeline:
    """One-hot categoricals and raw numerics into a small decision tree, fitted."""
    encode = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL_COLUMNS)),
            ("num", "passthrough", list(NUMERIC_COLUMNS)),
        ]
    )
    tree = DecisionTreeClassifier(max_depth=5, min_samples_leaf=20, random_state=0)
    pipeline = Pipeline([("encode", encode), ("classify", tree)])
    pipeline.fit(frame[list(FEATURE_COLUMNS)], frame[LABEL])
    return pipeline


def _number(value: float) -> str:
    """A float as PMML text: integral values without a fraction, others in full precision."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def loans_pmml(pipeline: Pipeline) -> str:
    """The fitted tree pipeline as a PMML 4.4 TreeModel on the raw columns (categoricals as strings).

    A split on a one-hot column becomes equal/notEqual on its categorical field; an unseen category
    goes where all of its one-hot columns are 0, as with ``handle_unknown="ignore"``.
    """
    encoder: OneHotEncoder = pipeline.named_steps["encode"].named_transformers_["cat"]
    tree = pipeline.named_steps["classify"].tree_
    classes = [str(c) for c in pipeline.named_steps["classify"].classes_]
    features: list[tuple[str, str | None]] = [
        (column, str(category))
        for column, categories in zip(CATEGORICAL_COLUMNS, encoder.categories_, strict=True)
        for category in categories
    ]
    features += [(column, None) for column in NUMERIC_COLUMNS]

    ns = "http://www.dmg.org/PMML-4_4"
    pmml = ET.Element("PMML", {"xmlns": ns, "version": "4.4"})
    header = ET.SubElement(pmml, "Header", {"description": "loans approval decision tree"})
    ET.SubElement(header, "Application", {"name": "modelstream scripts/make_datasets.py"})
    dictionary = ET.SubElement(pmml, "DataDictionary", {"numberOfFields": str(len(FEATURE_COLUMNS) + 1)})
    target = ET.SubElement(
        dictionary, "DataField", {"name": LABEL, "optype": "categorical", "dataType": "string"}
    )
    for value in classes:
        ET.SubElement(target, "Value", {"value": value})
    for column in NUMERIC_COLUMNS:
        data_type = "integer" if column in INTEGER_COLUMNS else "double"
        ET.SubElement(
            dictionary, "DataField", {"name": column, "optype": "continuous", "dataType": data_type}
        )
    for column, categories in CATEGORIES.items():
        field = ET.SubElement(
            dictionary, "DataField", {"name": column, "optype": "categorical", "dataType": "string"}
        )
        for category in categories:
            ET.SubElement(field, "Value", {"value": category})

    model = ET.SubElement(
        pmml,
        "TreeModel",
        {"modelName": "loans_tree", "functionName": "classification", "splitCharacteristic": "binarySplit"},
    )
    schema = ET.SubElement(model, "MiningSchema")
    ET.SubElement(schema, "MiningField", {"name": LABEL, "usageType": "target"})
    for column in FEATURE_COLUMNS:
        attributes = {"name": column}
        if column in CATEGORIES:
            attributes["invalidValueTreatment"] = "asIs"  # unseen categories score, as in the ONNX pipeline
        ET.SubElement(schema, "MiningField", attributes)
    output = ET.SubElement(model, "Output")
    for value in classes:
        ET.SubElement(
            output,
            "OutputField",
            {
                "name": f"probability({value})",
                "optype": "continuous",
                "dataType": "double",
                "feature": "probability",
                "value": value,
            },
        )

    def node(parent: ET.Element, index: int, predicate: tuple[str, dict[str, str]]) -> None:
        fractions = tree.value[index][0] / tree.value[index][0].sum()
        counts = np.rint(fractions * tree.weighted_n_node_samples[index]).astype(np.int64)
        element = ET.SubElement(
            parent,
            "Node",
            {
                "id": str(index),
                "score": classes[int(np.argmax(fractions))],
                "recordCount": str(int(counts.sum())),
            },
        )
        ET.SubElement(element, predicate[0], predicate[1])
        left, right = int(tree.children_left[index]), int(tree.children_right[index])
        if left < 0:
            for value, count, fraction in zip(classes, counts, fractions, strict=True):
                distribution = {
                    "value": value,
                    "recordCount": str(int(count)),
                    "probability": _number(fraction),
                }
                ET.SubElement(element, "ScoreDistribution", distribution)
            return
        column, category = features[int(tree.feature[index])]
        if category is None:
            threshold = _number(float(tree.threshold[index]))
            below = ("SimplePredicate", {"field": column, "operator": "lessOrEqual", "value": threshold})
            above = ("SimplePredicate", {"field": column, "operator": "greaterThan", "value": threshold})
        else:  # one-hot column <= 0.5: not this category
            below = ("SimplePredicate", {"field": column, "operator": "notEqual", "value": category})
            above = ("SimplePredicate", {"field": column, "operator": "equal", "value": category})
        node(element, left, below)
        node(element, right, above)

    node(model, 0, ("True", {}))
    ET.indent(pmml)
    text: str = ET.tostring(pmml, encoding="unicode", xml_declaration=False)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"


def digits_jsonl() -> str:
    """scikit-learn's bundled digits, one JSON record a line: record_id, 64 pixels, dataType."""
    images = load_digits().data.astype(np.int64)
    lines = [
        json.dumps({"record_id": f"digit-{i:04d}", "pixels": row.tolist(), "dataType": "digits"})
        for i, row in enumerate(images)
    ]
    return "\n".join(lines) + "\n"


def train_digits(seed: int = SEED) -> tuple[Pipeline, float]:
    """A standardized MLP on 80% of the digits, and its accuracy on the held-out 20%."""
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * 0.8)
    train, test = order[:cut], order[cut:]
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0)
    pipeline = Pipeline([("scale", StandardScaler()), ("classify", mlp)])
    pipeline.fit(x[train], y[train])
    held_out = float(np.mean(pipeline.predict(x[test]) == y[test]))
    return pipeline, held_out


def digits_onnx(pipeline: Pipeline) -> bytes:
    """The ONNX bytes of the digits MLP: input ``pixels`` float [None, 64], no ZipMap."""
    onx = to_onnx(
        pipeline,
        initial_types=[("pixels", FloatTensorType([None, 64]))],
        options={"zipmap": False},
        target_opset=TARGET_OPSET,
    )
    meta = onx.metadata_props.add()
    meta.key, meta.value = "classes", ",".join(str(c) for c in pipeline.classes_)
    onx.doc_string = "8x8 digits, StandardScaler + MLPClassifier(32), trained by scripts/make_datasets.py"
    return _serialize(onx)


def build_descriptor_set(proto: Path = LOANS_PROTO, out: Path = LOANS_DESC) -> Path:
    """Write the FileDescriptorSet of ``proto`` (with its imports) to ``out``, protoc in a subprocess."""
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto.parent}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        str(proto),
    ]
    # a process of its own: protoc's C++ protobuf must not meet TensorFlow's in one process
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("protoc failed: " + " ".join(args) + "\n" + done.stderr)
    return out


def accuracy(predicted: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> float:
    """The share of rows whose predicted class is the expected one."""
    return float(np.mean(np.asarray(predicted).astype(str) == np.asarray(expected).astype(str)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--desc-only", action="store_true", help="only (re)write data/loans/loans.desc")
    args = parser.parse_args()
    LOANS_DIR.mkdir(parents=True, exist_ok=True)
    print(f"wrote {build_descriptor_set()}")
    if args.desc_only:
        return
    DIGITS_DIR.mkdir(parents=True, exist_ok=True)

    LOANS_CSV.write_text(loans_csv(synthetic_loans()))
    frame = read_loans(LOANS_CSV)  # train on exactly what the CSV says
    pipeline = train_loans_pipeline(frame)
    LOANS_ONNX.write_bytes(loans_onnx(pipeline, zipmap=True))
    LOANS_ONNX_NOZIPMAP.write_bytes(loans_onnx(pipeline, zipmap=False))
    tree = train_loans_tree(frame)
    LOANS_PMML.write_text(loans_pmml(tree))
    features = frame[list(FEATURE_COLUMNS)]
    print(f"loans: logistic regression accuracy {accuracy(pipeline.predict(features), frame[LABEL]):.3f}")
    print(f"loans: decision tree accuracy {accuracy(tree.predict(features), frame[LABEL]):.3f}")

    DIGITS_JSONL.write_text(digits_jsonl())
    mlp, held_out = train_digits()
    DIGITS_ONNX.write_bytes(digits_onnx(mlp))
    print(f"digits: MLP held-out accuracy {held_out:.3f}")
    for path in (LOANS_CSV, LOANS_ONNX, LOANS_ONNX_NOZIPMAP, LOANS_PMML, DIGITS_JSONL, DIGITS_ONNX):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
