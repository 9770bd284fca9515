"""Train a wine-quality classifier with scikit-learn and export it to ONNX (for tests and the demo).

    .venv/bin/python scripts/train_wine_onnx.py [--csv data/wine/winequality_red.csv] [--out FILE]

Deterministic: the same CSV gives the same model. The class labels go into the ONNX metadata
("classes") so the job can name the probability columns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelstream.records import read_wine_csv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / "data" / "wine" / "winequality_red.csv"
DEFAULT_OUT = ROOT / "data" / "wine" / "wine_quality_logreg.onnx"


def train_onnx(csv: Path) -> bytes:
    """The ONNX bytes of a standardized logistic regression trained on the CSV."""
    rows = np.asarray(read_wine_csv(str(csv)), dtype=np.float32)
    x, y = rows[:, :11], rows[:, 11].astype(np.int64)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pipeline.fit(x, y)
    onx = to_onnx(pipeline, x[:1], options={"zipmap": False}, target_opset=17)
    classes = pipeline.classes_.tolist()
    meta = onx.metadata_props.add()
    meta.key, meta.value = "classes", ",".join(str(c) for c in classes)
    onx.doc_string = (
        "wine quality, StandardScaler + LogisticRegression, trained by scripts/train_wine_onnx.py"
    )
    data: bytes = onx.SerializeToString()
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.write_bytes(train_onnx(args.csv))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
