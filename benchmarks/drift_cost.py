"""What drift and feedback cost: the job's throughput and p99 with both off (`drift_window=0`,
`feedback_max_records=0`) against the defaults with a reference profile published with the model and
feedback for every record, in one run on the same records (issue 16: together at most 10 %).

    .venv/bin/python -m benchmarks.drift_cost [--records 100000] [--warm 100000] [--rounds 3]
        [--out docs/benchmarks.md]

ONNX wine model. With drift on, each micro-batch counts its inputs and predictions into the version's
window (PSI per feature every 1,000 records); with feedback on, every result is kept in the data type's
ring; in the last variant the true quality of every record is also published to the feedback topic right
after the records, so feedback is matched while the records are being scored (one message per record on
the job's source: twice the messages of the others). Rounds and figures as in benchmarks/variants.py.
"""

from __future__ import annotations

from benchmarks import variants
from benchmarks.variants import Variant
from benchmarks.wine_models import CSV, descriptor
from client import publish
from client.encode import read_wine_rows
from client.reference import reference_profile
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import StatsSnapshot

QUALITY = 11  # the wine CSV's column of true quality
OFF = "drift and feedback off"


def _plain_model(settings: Settings) -> None:
    publish.publish_model(settings, descriptor("onnx", "v1"))


def _profiled_model(settings: Settings) -> None:
    model = descriptor("onnx", "v1")
    model.reference_profile.CopyFrom(reference_profile(settings, model, CSV))  # publish-model --reference
    publish.publish_model(settings, model)


def _feedback(settings: Settings, prefix: str, records: int) -> None:
    """The true quality of records PREFIX-0 ... PREFIX-(records - 1) (publish_records cycles through the
    CSV)."""
    rows = read_wine_rows(CSV)
    labels = [str(int(row[QUALITY])) for row in rows]
    publish.publish_feedback(
        settings,
        (
            {"dataType": "wine", "record_id": f"{prefix}-{n}", "label": labels[n % len(rows)]}
            for n in range(records)
        ),
    )


def _feedback_read(snapshot: StatsSnapshot, warm: int) -> bool:
    """Every warm-up record's feedback is read: matched with the one version's result, or counted."""
    read = snapshot.current.quality.labelled + snapshot.feedback_unmatched + snapshot.feedback_invalid
    return read >= warm


VARIANTS = [
    Variant(OFF, _plain_model, settings={"drift_window": 0, "feedback_max_records": 0}),
    Variant(
        "drift on (reference profile), feedback off", _profiled_model, settings={"feedback_max_records": 0}
    ),
    Variant("drift and feedback on (results kept), no feedback messages", _profiled_model),
    Variant(
        "drift and feedback on, feedback for every record",
        _profiled_model,
        after_records=_feedback,
        settled=_feedback_read,
    ),
]


if __name__ == "__main__":
    variants.main("benchmarks.drift_cost", __doc__ or "", VARIANTS, 3, "drift", "## Drift and feedback")
