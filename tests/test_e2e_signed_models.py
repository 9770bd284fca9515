"""Signed models through the real broker and job (--require-signed-models): a model signed by a trusted key
serves; unsigned, tampered and signed-by-an-unknown-key models are dead-lettered MODEL_UNTRUSTED while the
serving model keeps scoring; with two trusted keys (a rotation) models signed by either serve; a signed
policy applies and an unsigned one is dead-lettered."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import catalog, messages, topics
from client.messages import decode_dead_letter, decode_score
from modelstream import signing
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e
CSV = str(WINE_DIR / "winequality_red.csv")
ONNX = str(WINE_DIR / "wine_quality_logreg.onnx")
REGRESSION = str(WINE_DIR / "winequalityLinearRegression.pmml")
TREE = str(WINE_DIR / "winequalityDecisionTreeClassification.pmml")


def generate(settings: Settings, out: Path) -> dict[str, str]:
    """`modelstream keys generate --out OUT`, its lines as {"private key": PATH, "public key": PATH,
    "key id": ID}."""
    printed = run_cli(settings, "keys", "generate", "--out", str(out))
    pairs = dict(line.split(": ", 1) for line in printed.strip().splitlines())
    assert set(pairs) == {"private key", "public key", "key id"}, printed
    return pairs


def serving(settings: Settings) -> str:
    snapshot = catalog.latest_stats(settings).get("wine")
    return snapshot.current.model.version if snapshot is not None else ""


def scored_by(settings: Settings, prefix: str, count: int, total: int) -> set[str]:
    """Publish ``count`` records with ids PREFIX-N; the versions that scored them (``total``: the scores
    expected on the topic by then)."""
    run_cli(settings, "publish-data", CSV, "--count", str(count), "--id-prefix", prefix)
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, total)]
    mine = [s for s in scores if s.record_id.startswith(prefix + "-")]
    assert len(mine) == count, (prefix, len(mine))
    return {s.model_version for s in mine}


def test_only_models_and_policies_signed_by_a_trusted_key_serve(
    stack_settings: Settings, start_job: JobStarter, tmp_path: Path
) -> None:
    old = generate(stack_settings, tmp_path / "old")
    new = generate(stack_settings, tmp_path / "new")
    unknown = generate(stack_settings, tmp_path / "unknown")
    assert len({old["key id"], new["key id"], unknown["key id"]}) == 3
    settings = stack_settings.replace(
        require_signed_models=True, trusted_keys=f"{old['public key']},{new['public key']}"
    )
    job = start_job(settings)

    # a model signed by a trusted key serves
    out = run_cli(settings, "publish-model", ONNX, "--version", "v1", "--sign-with", old["private key"])
    assert f"signed by key {old['key id']}" in out
    wait_for(lambda: serving(settings) == "v1", 120, "v1 serving")
    assert scored_by(settings, "first", 20, 20) == {"v1"}

    # unsigned, tampered (one byte of its model data changed after signing) and unknown-key models:
    # each dead-lettered MODEL_UNTRUSTED, v1 keeps scoring
    run_cli(settings, "publish-model", REGRESSION, "--version", "unsigned")
    descriptor = messages.model_descriptor(Path(TREE), "tree", "wine", "pmml", version="tampered")
    signing.sign(descriptor, signing.load_private_key(old["private key"]))
    raw = descriptor.SerializeToString()
    at = raw.index(descriptor.data) + len(descriptor.data) // 2
    raw = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
    producer = topics.producer(settings)
    producer.produce(settings.models_topic, key=b"wine", value=raw)
    assert producer.flush(30) == 0
    run_cli(settings, "publish-model", TREE, "--version", "unknown", "--sign-with", unknown["private key"])
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 3, job=job)]
    by_version = {d.model_version: d for d in letters}
    assert sorted(by_version) == ["tampered", "unknown", "unsigned"], letters
    assert {d.reason for d in letters} == {DeadLetter.MODEL_UNTRUSTED}
    assert "unsigned" in by_version["unsigned"].message
    assert "does not match" in by_version["tampered"].message
    assert f"signed by key {unknown['key id']} which is not trusted" in by_version["unknown"].message
    assert by_version["tampered"].raw == raw and by_version["tampered"].model_name == "tree"
    assert scored_by(settings, "after-untrusted", 20, 40) == {"v1"}
    assert serving(settings) == "v1"

    # a rotation: a model signed by the other trusted key serves too
    run_cli(settings, "publish-model", REGRESSION, "--version", "v2", "--sign-with", new["private key"])
    wait_for(lambda: serving(settings) == "v2", 120, "v2 (signed by the new key) serving")
    assert scored_by(settings, "rotated", 20, 60) == {"v2"}

    # policies: an unsigned promote is dead-lettered, a signed one applies
    run_cli(settings, "publish-model", TREE, "--version", "v3", "--stage", "--sign-with", old["private key"])
    wait_for(
        lambda: "v3" in [m.model.version for m in catalog.latest_stats(settings)["wine"].versions],
        120,
        "v3 staged",
    )
    run_cli(settings, "promote", "wine", "v3")
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 4, job=job)]
    assert len(letters) == 4 and letters[-1].reason == DeadLetter.MODEL_UNTRUSTED, letters
    assert "policy is unsigned" in letters[-1].message
    assert scored_by(settings, "unsigned-policy", 20, 80) == {"v2"}
    out = run_cli(settings, "promote", "wine", "v3", "--sign-with", new["private key"])
    assert f"signed by key {new['key id']}" in out
    wait_for(lambda: serving(settings) == "v3", 60, "the signed promote to apply")
    assert scored_by(settings, "signed-policy", 20, 100) == {"v3"}
    assert len(read_topic(settings, settings.dead_letters_topic, 4, job=job)) == 4
