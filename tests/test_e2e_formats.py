"""Every format through the real broker and job: all 1,599 wine rows scored exactly as the format's
reference runtime scores them, and broken models rejected while the serving one keeps scoring."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from client import publish
from client.messages import decode_dead_letter, decode_score
from modelstream.archive import pack_directory
from modelstream.contract import ScoreBatch
from modelstream.records import read_wine_csv
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult
from tests import references
from tests.conftest import WINE_DIR, JobStarter, read_topic
from tests.test_models import ALL_FORMATS, SAVED_DIR, _two_placeholder_graph

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"
ROWS = np.asarray(read_wine_csv(str(CSV)), dtype=np.float64)[:, :11]
D = ModelDescriptor


def _check_against_reference(case: str, scores: list[ScoreResult], expected: ScoreBatch) -> None:
    rtol = 1e-9 if case.startswith("pmml") else 1e-6
    # ONNX and TF compute class scores in float32, and round them differently for one row (as the job
    # calls them) than for a batch (as the reference is called): allow 1e-6 relative or one float32 step
    # at 1.0 (2**-23) absolute. Classes must agree exactly; PMML (float64, JPMML) to 1e-9.
    atol = 0.0 if case.startswith("pmml") else 2.0**-23
    by_row = {int(s.record_id.rsplit("-", 1)[1]): s for s in scores}
    assert sorted(by_row) == list(range(len(ROWS))), f"{case}: one score per row"
    for i, score in by_row.items():
        assert score.model_version == case
        if expected.labels is not None:
            assert score.label == expected.labels[i], f"{case} row {i}"
        if expected.values is not None:
            assert score.value == pytest.approx(expected.values[i], rel=rtol, abs=0), f"{case} row {i}"
        if expected.probabilities is not None:
            got = [score.probabilities[c] for c in expected.classes]
            np.testing.assert_allclose(
                got, expected.probabilities[i], rtol=rtol, atol=atol, err_msg=f"{case} row {i}"
            )


def test_every_format_scores_all_rows_like_its_reference(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(model_roots=str(WINE_DIR))
    _score_every_row_like_the_reference(settings, start_job(settings), sorted(ALL_FORMATS))


def test_thread_mode_scores_pmml_with_jpmml_in_flinks_own_jvm(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    """Thread mode: JPMML runs in the JVM the job's Python runs in (model/jpmml_jvm.py), the default
    engine, and scores every row as JPMML in a JVM of its own does; a corrupt PMML is rejected. Two
    parallel tasks: each runs its own thread in the same interpreter, each with its own JPMML backend."""
    settings = stack_settings.replace(python_execution_mode="thread", parallelism=2)
    assert settings.pmml_engine == "jpmml"
    job = start_job(settings)
    _score_every_row_like_the_reference(settings, job, sorted(c for c in ALL_FORMATS if c.startswith("pmml")))
    corrupt = D(name="corrupt", dataType="wine-corrupt", version="c-1", modeltype=D.PMML, data=b"<PMML>x")
    publish.publish_model(settings, corrupt)
    [letter] = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 1, job=job)]
    assert (letter.reason, letter.model_name) == (DeadLetter.MODEL_BUILD_FAILED, "corrupt")
    assert "jpmml cannot load the model" in letter.message, letter.message
    assert job.poll() is None


def _score_every_row_like_the_reference(
    settings: Settings, job: subprocess.Popen[bytes], cases: list[str]
) -> None:
    descriptors = {}
    for case in cases:
        descriptor = ALL_FORMATS[case]()
        descriptor.name, descriptor.dataType, descriptor.version = case, f"wine-{case}", case
        descriptors[case] = descriptor
        publish.publish_model(settings, descriptor)
    for case in cases:  # records may arrive before their model: they are held, then scored by it
        publish.publish_records(settings, CSV, data_type=f"wine-{case}", id_prefix=case)

    values = read_topic(settings, settings.scores_topic, len(cases) * len(ROWS), timeout_s=400, job=job)
    scores: dict[str, list[ScoreResult]] = {case: [] for case in cases}
    for value in values:
        score = decode_score(value)
        scores[score.model_name].append(score)
    for case in cases:
        _check_against_reference(case, scores[case], references.score(descriptors[case], ROWS))
    assert len(values) == len(cases) * len(ROWS)


def test_broken_models_never_replace_the_serving_one(stack_settings: Settings, start_job: JobStarter) -> None:
    settings = stack_settings.replace(model_roots=str(WINE_DIR))
    job = start_job(settings)
    good = ALL_FORMATS["onnx"]()
    good.name, good.version = "good", "g-1"
    publish.publish_model(settings, good)
    # records first: a new model is validated on the data type's most recent good record
    publish.publish_records(settings, CSV, count=20, id_prefix="before")
    read_topic(settings, settings.scores_topic, 20, job=job)
    missing_field = (
        (WINE_DIR / "winequalityLinearRegression.pmml").read_text().replace('"chlorides"', '"saltiness"')
    )
    built = DeadLetter.MODEL_BUILD_FAILED
    broken = {
        "onnx-corrupt": (D(modeltype=D.ONNX, data=b"\x00corrupt"), built, "onnxruntime cannot load"),
        "pmml-corrupt": (D(modeltype=D.PMML, data=b"<PMML>corrupt"), built, "cannot load"),
        "graph-corrupt": (
            D(modeltype=D.TENSORFLOW, data=b"\xff\xffcorrupt"),
            built,
            "not a TensorFlow GraphDef",
        ),
        "saved-corrupt": (D(modeltype=D.TENSORFLOWSAVED, data=b"corrupt"), built, "not a zip or tar.gz"),
        # a field wine records lack is PMML's missing value: this regression then predicts nothing
        "pmml-missing-field": (
            D(modeltype=D.PMML, data=missing_field.encode()),
            DeadLetter.MODEL_VALIDATION_FAILED,
            "probe record",
        ),
        "saved-outside-roots": (
            D(modeltype=D.TENSORFLOWSAVED, location="/etc"),
            built,
            "outside the allowed roots",
        ),
        # placeholders named a and b: no field of wine records feeds them
        "graph-unbound": (
            D(modeltype=D.TENSORFLOW, data=_two_placeholder_graph()),
            DeadLetter.MODEL_INPUTS_UNBOUND,
            "missing field a",
        ),
        "saved-bad-signature": (
            D(modeltype=D.TENSORFLOWSAVED, data=pack_directory(SAVED_DIR), signature="nope"),
            built,
            "signature 'nope' not in",
        ),
    }
    for name, (descriptor, _, _) in broken.items():
        descriptor.name, descriptor.dataType, descriptor.version = name, "wine", name
        publish.publish_model(settings, descriptor)
    letters = [
        decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, len(broken), job=job)
    ]
    assert sorted(d.model_name for d in letters) == sorted(broken)
    for letter in letters:
        _, reason, text = broken[letter.model_name]
        assert letter.reason == reason, letter
        assert text in letter.message, letter.message
        assert letter.model_version == letter.model_name and letter.data_type == "wine"

    publish.publish_records(settings, CSV, count=100, id_prefix="after")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 120, job=job)][20:]
    assert len(scores) == 100 and {(s.model_name, s.model_version) for s in scores} == {("good", "g-1")}
