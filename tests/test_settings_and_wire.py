"""Settings from the environment, and the wire format contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from modelstream.settings import Settings
from modelstream.topics import (
    PERFORMANCE_POLICY_MESSAGE,
    RECORD_SCHEMA_MESSAGE,
    ROLLOUT_POLICY_MESSAGE,
    Encoding,
)
from protobufs.generate import PROTO_DIR, generate
from protobufs.modelstream_pb2 import (
    DeadLetter,
    DriftReport,
    DriftWindow,
    Ensemble,
    FeatureProfile,
    LiveQuality,
    ModelDescriptor,
    ModelStats,
    OutputTensor,
    PerformancePolicy,
    Ramp,
    RecordSchema,
    ReferenceProfile,
    RolloutPolicy,
    Route,
    ScoreResult,
    ServedResults,
    Speculative,
    StatsSnapshot,
    WineRecord,
)


def test_settings_come_from_modelstream_env_vars() -> None:
    s = Settings.from_env({"MODELSTREAM_BOOTSTRAP": "h:1", "MODELSTREAM_PARALLELISM": "3", "OTHER": "x"})
    assert (s.bootstrap, s.parallelism, s.models_topic) == ("h:1", 3, "models")
    assert Settings.from_env(s.to_env()) == s
    with pytest.raises(ValueError, match="MODELSTREAM_PARALLELISM"):
        Settings.from_env({"MODELSTREAM_PARALLELISM": "many"})


def test_flags_override_environment() -> None:
    s = Settings.from_env({"MODELSTREAM_DATA_TOPIC": "env"}).replace(data_topic="flag", scores_topic=None)
    assert (s.data_topic, s.scores_topic) == ("flag", "scores")


def test_every_setting_explains_itself_in_modelstream_settings(capsys: pytest.CaptureFixture[str]) -> None:
    from client.cli import main

    assert main(["settings"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(Settings):
        assert f.metadata.get("help"), f.name
        assert " ".join(f.metadata["help"].split()) in text, f.name


def test_extra_flink_options_are_key_value_pairs() -> None:
    s = Settings.from_env({"MODELSTREAM_FLINK_OPTIONS": "a.b=1; c = x=y ;"})
    assert s.flink_option_pairs() == [("a.b", "1"), ("c", "x=y")]
    with pytest.raises(ValueError, match="'nokey'"):
        s.replace(flink_options="a=1;nokey").flink_option_pairs()


def test_job_settings_that_cannot_run_together_are_refused_with_what_to_change() -> None:
    Settings().check_job()
    Settings(python_execution_mode="thread", pmml_engine="pypmml").check_job()
    Settings(python_execution_mode="thread").check_job()  # JPMML runs in Flink's JVM there
    with pytest.raises(ValueError, match="process or thread"):
        Settings(python_execution_mode="threads").check_job()
    with pytest.raises(ValueError, match="not key=value"):
        Settings(flink_options="x").check_job()


def test_the_job_reads_feedback_after_the_data_topics_and_no_topic_twice() -> None:
    settings = Settings(data_topics="wine,loans;encoding=json", feedback_topic="labels")
    specs = settings.job_topic_specs()
    assert [(s.topic, s.encoding, s.default_data_type) for s in specs[1:]] == [
        ("loans", Encoding.JSON, "loans"),
        ("labels", Encoding.FEEDBACK, ""),  # feedback without a dataType is dead-lettered, not keyed
    ]
    assert Settings(feedback_topic="").job_topic_specs() == Settings().topic_specs()
    with pytest.raises(ValueError, match="also a data topic"):
        settings.replace(feedback_topic="loans").check_job()


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    for fresh in generate(tmp_path):
        assert fresh.read_bytes() == (PROTO_DIR / fresh.name).read_bytes(), (
            f"{fresh.name} is stale: make protos"
        )


def test_tutorial_field_numbers_are_stable() -> None:
    numbers = {f.name: f.number for f in ModelDescriptor.DESCRIPTOR.fields}
    assert numbers == {
        "name": 1,
        "description": 2,
        "dataType": 3,
        "modeltype": 4,
        "data": 5,
        "location": 6,
        "version": 7,
        "input_name": 8,
        "output_name": 9,
        "signature": 10,
        "input_fields": 11,
        "staged": 12,
        "quality": 13,
        "publisher_signature": 14,
        "signing_key_id": 15,
        "reference_profile": 16,
    }
    assert dict(ModelDescriptor.ModelType.items()) == {
        "TENSORFLOW": 0,
        "TENSORFLOWSAVED": 1,
        "PMML": 2,
        "ONNX": 3,
    }
    wine = [f.name for f in sorted(WineRecord.DESCRIPTOR.fields, key=lambda f: f.number)]
    assert wine[:13] == [
        "fixed_acidity",
        "volatile_acidity",
        "citric_acid",
        "residual_sugar",
        "chlorides",
        "free_sulfur_dioxide",
        "total_sulfur_dioxide",
        "density",
        "pH",
        "sulphates",
        "alcohol",
        "dataType",
        "ts",
    ]
    assert [f.number for f in sorted(WineRecord.DESCRIPTOR.fields, key=lambda f: f.number)][:13] == list(
        range(1, 14)
    )


def test_round_two_field_numbers_are_stable() -> None:
    numbers = {f.name: f.number for f in ScoreResult.DESCRIPTOR.fields}
    assert numbers == {
        "model_name": 1,
        "model_version": 2,
        "data_type": 3,
        "record_id": 4,
        "record_ts": 5,
        "scored_at": 6,
        "scoring_time_ns": 7,
        "label": 8,
        "value": 9,
        "probabilities": 10,
        "model_type": 11,
        "source_topic": 12,
        "source_partition": 13,
        "source_offset": 14,
        "outputs": 15,
        "role": 16,
        "policy_version": 17,
        "members": 18,
        "speculation": 19,
    }
    assert dict(DeadLetter.Reason.items()) == {
        "UNSPECIFIED": 0,
        "RECORD_UNDECODABLE": 1,
        "MODEL_UNDECODABLE": 2,
        "UNKNOWN_MODEL_TYPE": 3,
        "MODEL_BUILD_FAILED": 4,
        "MODEL_VALIDATION_FAILED": 5,
        "RECORD_INVALID": 6,
        "NO_MODEL": 7,
        "SCORING_FAILED": 8,
        "MODEL_INPUTS_UNBOUND": 9,
        "SCHEMA_INVALID": 10,
        "POLICY_INVALID": 11,
        "MODEL_UNTRUSTED": 12,
        "MODEL_UNSAFE": 13,
        "FEEDBACK_INVALID": 15,
        "MODEL_TOO_LARGE": 14,
    }
    assert {f.name: f.number for f in OutputTensor.DESCRIPTOR.fields} == {
        "shape": 1,
        "values": 2,
        "strings": 3,
    }
    assert RecordSchema.DESCRIPTOR.full_name == RECORD_SCHEMA_MESSAGE == "modelstream.RecordSchema"
    assert {f.name: f.number for f in RecordSchema.DESCRIPTOR.fields} == {
        "data_type": 1,
        "message_name": 2,
        "file_descriptor_set": 3,
    }


def test_rollout_field_numbers_are_stable() -> None:
    assert RolloutPolicy.DESCRIPTOR.full_name == ROLLOUT_POLICY_MESSAGE == "modelstream.RolloutPolicy"
    assert {f.name: f.number for f in RolloutPolicy.DESCRIPTOR.fields} == {
        "data_type": 1,
        "version": 2,
        "salt": 3,
        "serve": 4,
        "ramp": 5,
        "shadow": 6,
        "retain": 7,
        "action": 8,
        "gate_records": 9,
        "gated_versions": 10,
        "ensemble": 11,
        "speculative": 12,
        "publisher_signature": 13,
        "signing_key_id": 14,
    }
    assert dict(RolloutPolicy.Action.items()) == {"ROUTE": 0, "ROLLBACK": 1, "PROMOTE": 2}
    assert {f.name: f.number for f in Route.DESCRIPTOR.fields} == {"model_version": 1, "weight": 2}
    assert [f.number for f in Ramp.DESCRIPTOR.fields] == [1, 2, 3, 4, 5, 6]
    assert dict(ScoreResult.Role.items()) == {"SERVED": 0, "SHADOW": 1, "MEMBER": 2, "LATE": 3}
    assert {f.name: f.number for f in StatsSnapshot.DESCRIPTOR.fields}["versions"] == 5
    assert {f.name: f.number for f in StatsSnapshot.DESCRIPTOR.fields}["policy"] == 6
    assert {f.name: f.number for f in ModelStats.DESCRIPTOR.fields}["share"] == 12
    assert {f.name: f.number for f in ModelStats.DESCRIPTOR.fields}["role"] == 13
    assert {f.name: f.number for f in ModelStats.DESCRIPTOR.fields}["gate_clean"] == 14


def test_drift_and_feedback_field_numbers_are_stable() -> None:
    assert {f.name: f.number for f in ModelDescriptor.DESCRIPTOR.fields}["reference_profile"] == 16
    stats = {f.name: f.number for f in ModelStats.DESCRIPTOR.fields}
    assert {k: stats[k] for k in ("quality", "drift")} == {"quality": 15, "drift": 19}
    assert {f.name: f.number for f in LiveQuality.DESCRIPTOR.fields} == {
        "labelled": 1,
        "correct": 2,
        "abs_error_sum": 3,
        "squared_error_sum": 4,
        "regression": 5,
    }
    snapshot = {f.name: f.number for f in StatsSnapshot.DESCRIPTOR.fields}
    assert {k: snapshot[k] for k in ("drift", "feedback_unmatched", "feedback_invalid")} == {
        "drift": 7,
        "feedback_unmatched": 8,
        "feedback_invalid": 9,
    }
    assert {f.name: f.number for f in FeatureProfile.DESCRIPTOR.fields} == {
        "name": 1,
        "edges": 2,
        "categories": 3,
        "proportions": 4,
    }
    assert {f.name: f.number for f in ReferenceProfile.DESCRIPTOR.fields} == {
        "features": 1,
        "prediction": 2,
        "records": 3,
        "source": 4,
    }
    assert dict(ReferenceProfile.Source.items()) == {"REFERENCE": 0, "PMML_MODEL_STATS": 1, "WARM_UP": 2}
    assert {f.name: f.number for f in DriftReport.DESCRIPTOR.fields} == {
        "status": 1,
        "psi": 2,
        "prediction_psi": 3,
        "flagged": 4,
        "windows": 5,
        "window_records": 6,
        "profile_source": 7,
        "warming_up": 8,
        "data_type": 9,
        "model_version": 10,
        "changed_at": 11,
        "window": 12,
        "warm_up_profile": 13,
    }
    assert {f.name: f.number for f in DriftWindow.DESCRIPTOR.fields} == {
        "records": 1,
        "counts": 2,
        "pending": 3,
        "streak": 4,
    }


def test_live_model_field_numbers_are_stable() -> None:
    numbers = {f.name: f.number for f in ModelStats.DESCRIPTOR.fields}
    assert {name: numbers[name] for name in ("memory_bytes", "cold_loads", "load_ns")} == {
        "memory_bytes": 20,
        "cold_loads": 21,
        "load_ns": 22,
    }


def test_ensemble_field_numbers_are_stable() -> None:
    assert {f.name: f.number for f in Ensemble.DESCRIPTOR.fields} == {
        "method": 1,
        "members": 2,
        "member_results": 3,
        "name": 4,
    }
    assert dict(Ensemble.Method.items()) == {"VOTE": 0, "MEAN": 1, "MAX_CONFIDENCE": 2, "BEST_QUALITY": 3}
    assert {f.name: f.number for f in Speculative.DESCRIPTOR.fields} == {
        "primary_version": 1,
        "fallback_version": 2,
        "deadline_ms": 3,
    }
    assert dict(ScoreResult.Speculation.items()) == {
        "NOT_SPECULATIVE": 0,
        "PRIMARY_IN_TIME": 1,
        "FALLBACK": 2,
    }


def test_feedback_and_performance_field_numbers_are_stable() -> None:
    assert {f.name: f.number for f in ServedResults.DESCRIPTOR.fields} == {
        "record_ids": 1,
        "stored_at": 2,
        "predictions": 3,
        "versions": 4,
        "labels": 5,
        "next": 6,
        "classifier": 7,
        "stored_at_raw": 8,
        "predictions_raw": 9,
    }
    assert PerformancePolicy.DESCRIPTOR.full_name == PERFORMANCE_POLICY_MESSAGE
    assert {f.name: f.number for f in PerformancePolicy.DESCRIPTOR.fields} == {
        "data_type": 1,
        "version": 2,
        "candidates": 3,
        "min_labelled": 4,
        "keep_top": 5,
        "retain": 6,
        "publisher_signature": 7,
        "signing_key_id": 8,
    }


def test_jvm_options_go_before_the_callers_jvm_args_and_to_the_local_taskmanagers(tmp_path: Path) -> None:
    from client import local_cluster
    from jobs.scoring_job import gateway_jvm_args

    s = Settings(home=str(tmp_path))
    assert "-XX:+UseParallelGC" in s.jvm_options.split()
    assert gateway_jvm_args(s, {}) == s.jvm_options
    both = gateway_jvm_args(s.replace(jvm_options="-Xmx2g"), {"JVM_ARGS": "-Dx=1"})
    assert both.split() == ["-Xmx2g", "-Dx=1"]
    assert gateway_jvm_args(s.replace(jvm_options=""), {"JVM_ARGS": "-Dx=1"}) == "-Dx=1"
    config = local_cluster._config(s.replace(jvm_options="-Xss2m -XX:+UseParallelGC"), slots=1)
    assert config["env"]["java"]["opts"]["taskmanager"] == "-Xss2m -XX:+UseParallelGC"
    assert "--add-opens" in config["env"]["java"]["opts"]["all"], "Flink's own options stay"
    assert "taskmanager" not in local_cluster._config(s.replace(jvm_options=""), 1)["env"]["java"]["opts"]
