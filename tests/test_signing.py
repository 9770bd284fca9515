"""Signed models and policies: Ed25519 signatures, key files, the job's trust settings, the serving core
dead-lettering what is not signed by a trusted key (MODEL_UNTRUSTED) while the current model keeps serving,
and the CLI's key commands and flags. No broker: tests/test_e2e_signed_models.py runs it for real."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from client import cli
from client.errors import CliError, ExitCode
from modelstream import signing
from modelstream.contract import ModelOptions
from modelstream.interface import Sink
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import Settings
from modelstream.signing import Trust, Untrusted, sign, verify
from modelstream.testing import CountingMetrics, ManualClock, MemoryKeyContext, letters, scores, sinks
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, RolloutPolicy, Route, StatsSnapshot
from tests.conftest import WINE_DIR, free_port
from tests.test_serving import incoming, rec, record

D = ModelDescriptor


def descriptor(version: str = "v1", file: str = "wine_quality_logreg.onnx") -> ModelDescriptor:
    kind = D.ONNX if file.endswith(".onnx") else D.PMML
    data = (WINE_DIR / file).read_bytes()
    return D(name=f"m-{version}", dataType="wine", modeltype=kind, version=version, data=data)


def signed(message: ModelDescriptor | RolloutPolicy, key: Ed25519PrivateKey) -> bytes:
    sign(message, key)
    return message.SerializeToString()


def tampered(raw: bytes, data: bytes) -> bytes:
    """``raw`` with one byte of the model's data (inside its serialization) changed."""
    at = raw.index(data) + len(data) // 2
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]


def trusted(*keys: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {signing.key_id(k.public_key()): k.public_key() for k in keys}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def other() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


# -- signatures -------------------------------------------------------------------------------------


def test_a_key_id_is_16_hex_digits_of_the_sha256_of_the_raw_public_key(key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert signing.key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_a_signed_model_verifies_after_the_wire_and_names_its_key(key: Ed25519PrivateKey) -> None:
    model = descriptor()
    key_id = sign(model, key)
    assert model.signing_key_id == key_id and len(model.publisher_signature) == 64
    received = D.FromString(model.SerializeToString())
    assert verify(received, trusted(key)) == key_id
    # the signature covers every field but itself: the same message without it, deterministically
    received.ClearField("publisher_signature")
    key.public_key().verify(model.publisher_signature, received.SerializeToString(deterministic=True))


def test_one_byte_changed_after_signing_does_not_match(key: Ed25519PrivateKey) -> None:
    model = descriptor()
    raw = tampered(signed(model, key), model.data)
    with pytest.raises(Untrusted, match=r"signature does not match \(tampered or wrong key\)"):
        verify(D.FromString(raw), trusted(key))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: setattr(m, "version", "v2"),
        lambda m: setattr(m, "staged", True),
        lambda m: setattr(m, "quality", 0.5),
        lambda m: m.input_fields.append("alcohol"),
    ],
)
def test_every_field_is_covered(key: Ed25519PrivateKey, change: object) -> None:
    model = descriptor()
    sign(model, key)
    change(model)  # type: ignore[operator]
    with pytest.raises(Untrusted, match="does not match"):
        verify(model, trusted(key))


def test_the_key_id_is_covered_too(key: Ed25519PrivateKey, other: Ed25519PrivateKey) -> None:
    model = descriptor()
    sign(model, key)
    model.signing_key_id = signing.key_id(other.public_key())  # claims to be by the other trusted key
    with pytest.raises(Untrusted, match="does not match"):
        verify(model, trusted(key, other))


def test_a_model_by_an_unknown_key_is_not_trusted(key: Ed25519PrivateKey, other: Ed25519PrivateKey) -> None:
    model = descriptor()
    by = sign(model, other)
    with pytest.raises(Untrusted, match=f"signed by key {by} which is not trusted") as raised:
        verify(model, trusted(key))
    assert signing.key_id(key.public_key()) in str(raised.value)  # the trusted ones are listed


def test_an_unsigned_model_is_not_trusted(key: Ed25519PrivateKey) -> None:
    with pytest.raises(Untrusted, match="the model is unsigned"):
        verify(descriptor(), trusted(key))
    with pytest.raises(Untrusted, match="the policy is unsigned"):
        verify(RolloutPolicy(data_type="wine", version=1), trusted(key))


def test_with_two_trusted_keys_either_signature_verifies(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey
) -> None:
    keys = trusted(key, other)
    old, new = descriptor("v1"), descriptor("v2")
    assert verify(D.FromString(signed(old, key)), keys) == signing.key_id(key.public_key())
    assert verify(D.FromString(signed(new, other)), keys) == signing.key_id(other.public_key())


def test_a_policy_is_signed_the_same_way(key: Ed25519PrivateKey) -> None:
    policy = RolloutPolicy(data_type="wine", version=7, serve=[Route(model_version="v2", weight=1)])
    raw = signed(policy, key)
    received = RolloutPolicy.FromString(raw)
    assert verify(received, trusted(key)) == signing.key_id(key.public_key())
    received.serve[0].model_version = "v3"
    with pytest.raises(Untrusted, match="policy's signature does not match"):
        verify(received, trusted(key))


def test_a_model_by_location_cannot_be_signed_nor_verified(key: Ed25519PrivateKey) -> None:
    by_location = D(name="saved", dataType="wine", modeltype=D.TENSORFLOWSAVED, location="/models/saved")
    with pytest.raises(ValueError, match="by location cannot be signed"):
        sign(by_location, key)
    # even with a signature (made by hand), its bytes are not in the message: refused
    by_location.signing_key_id = signing.key_id(key.public_key())
    by_location.publisher_signature = key.sign(signing.signed_bytes(by_location))
    with pytest.raises(Untrusted, match=r"by location cannot be verified.*publish its bytes"):
        verify(by_location, trusted(key))


# -- key files ----------------------------------------------------------------------------------------


def test_generate_writes_a_private_key_only_its_owner_reads_and_a_public_key(tmp_path: Path) -> None:
    pair = signing.generate_key_pair(tmp_path / "keys")
    assert pair.private_path == tmp_path / "keys" / "private.pem"
    assert pair.public_path == tmp_path / "keys" / "public.pem"
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    assert pair.private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    private = signing.load_private_key(pair.private_path)
    public = signing.load_public_key(pair.public_path)
    assert signing.key_id(public) == signing.key_id(private.public_key()) == pair.key_id
    model = descriptor()
    sign(model, private)
    assert verify(model, signing.load_trusted_keys([pair.public_path])) == pair.key_id


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    first = signing.generate_key_pair(tmp_path)
    with pytest.raises(FileExistsError):
        signing.generate_key_pair(tmp_path)
    assert signing.key_id(signing.load_public_key(first.public_path)) == first.key_id


def test_key_files_that_do_not_load_are_named(tmp_path: Path) -> None:
    pair = signing.generate_key_pair(tmp_path)
    missing, garbage = tmp_path / "nope.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(signing.KeyFileError, match=f"cannot read trusted key file {missing}"):
        signing.load_trusted_keys([pair.public_path, missing])
    with pytest.raises(signing.KeyFileError, match=f"{garbage} is not a PEM public key"):
        signing.load_public_key(garbage)
    with pytest.raises(signing.KeyFileError, match=f"{pair.public_path} is not an unencrypted PEM private"):
        signing.load_private_key(pair.public_path)
    with pytest.raises(signing.KeyFileError, match=f"cannot read private key file {missing}"):
        signing.load_private_key(missing)


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.pem"
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path.write_bytes(pem)
    with pytest.raises(signing.KeyFileError, match="not an Ed25519 public key"):
        signing.load_public_key(path)


# -- the job's settings -------------------------------------------------------------------------------


def test_required_signatures_need_a_trusted_key_and_fail_the_job_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="require_signed_models needs at least one trusted key"):
        Settings(require_signed_models=True).check_job()
    missing = tmp_path / "gone.pem"
    with pytest.raises(signing.KeyFileError, match=str(missing)):
        Settings(require_signed_models=True, trusted_keys=str(missing)).check_job()
    a, b = signing.generate_key_pair(tmp_path / "a"), signing.generate_key_pair(tmp_path / "b")
    settings = Settings(require_signed_models=True, trusted_keys=f"{a.public_path}, {b.public_path}")
    settings.check_job()
    trust = settings.trust()
    assert trust.required and set(trust.keys) == {a.key_id, b.key_id}


def test_without_required_signatures_the_keys_are_not_read() -> None:
    trust = Settings(trusted_keys="/no/such/key.pem").trust()
    assert not trust.required and not trust.keys


# -- the serving core ---------------------------------------------------------------------------------


def server_for(trust: Trust, clock: ManualClock, metrics: CountingMetrics) -> ModelServer:
    return ModelServer(ServingSettings(stats_interval_ms=1000, trust=trust), ModelOptions(), clock, metrics)


def test_only_models_signed_by_a_trusted_key_serve(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics
) -> None:
    server = server_for(Trust(trusted(key), required=True), clock, metrics)
    ctx = MemoryKeyContext()
    out = server.on_model("wine", incoming(signed(descriptor("v1"), key)), ctx)
    assert not letters(out) and sinks(out, Sink.STATS)
    good = descriptor("v-tampered", "winequalityLinearRegression.pmml")
    rejected = {
        "v-unsigned": descriptor("v-unsigned", "winequalityLinearRegression.pmml").SerializeToString(),
        "v-tampered": tampered(signed(good, key), good.data),
        "v-unknown": signed(descriptor("v-unknown", "winequalityLinearRegression.pmml"), other),
    }
    why = {"v-unsigned": "unsigned", "v-tampered": "does not match", "v-unknown": "not trusted"}
    for offset, (version, raw) in enumerate(rejected.items(), start=1):
        out = server.on_model("wine", incoming(raw, offset), ctx)
        (letter,) = letters(out)
        assert letter.reason == DeadLetter.MODEL_UNTRUSTED, letter
        assert (letter.model_name, letter.model_version, letter.data_type) == (
            f"m-{version}",
            version,
            "wine",
        )
        assert why[version] in letter.message and letter.raw == raw and letter.offset == offset
        assert not sinks(out, Sink.STATS)  # nothing changed
        # the trusted model keeps serving
        (score,) = scores(server.on_records("wine", [rec(record(offset), offset)], ctx))
        assert score.model_version == "v1"
    assert metrics.rejected == ["wine"] * 3
    assert list(ctx.versions) == ["v1"]


def test_an_untrusted_model_is_refused_before_it_is_built(
    key: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelstream.serving

    def no_admission(*args: object) -> None:
        raise AssertionError("an untrusted model reached admission")

    monkeypatch.setattr(modelstream.serving, "admit", no_admission)
    server = server_for(Trust(trusted(key), required=True), clock, metrics)
    (letter,) = letters(
        server.on_model("wine", incoming(descriptor().SerializeToString()), MemoryKeyContext())
    )
    assert letter.reason == DeadLetter.MODEL_UNTRUSTED


def test_a_model_by_location_is_refused_under_required_signatures(
    key: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics
) -> None:
    server = server_for(Trust(trusted(key), required=True), clock, metrics)
    raw = D(
        name="saved", dataType="wine", modeltype=D.TENSORFLOWSAVED, version="s1", location="x"
    ).SerializeToString()
    (letter,) = letters(server.on_model("wine", incoming(raw), MemoryKeyContext()))
    assert letter.reason == DeadLetter.MODEL_UNTRUSTED and "publish its bytes" in letter.message
    assert (letter.model_name, letter.model_version) == ("saved", "s1")


def test_only_policies_signed_by_a_trusted_key_apply(
    key: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics
) -> None:
    server = server_for(Trust(trusted(key), required=True), clock, metrics)
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(signed(descriptor("v1"), key)), ctx)
    staged = descriptor("v2", "winequalityLinearRegression.pmml")
    staged.staged = True
    assert not letters(server.on_model("wine", incoming(signed(staged, key), 1), ctx))

    promote = RolloutPolicy(
        data_type="wine",
        version=10,
        action=RolloutPolicy.PROMOTE,
        serve=[Route(model_version="v2", weight=1)],
    )
    (letter,) = letters(server.on_policy("wine", incoming(promote.SerializeToString(), 2), ctx))
    assert letter.reason == DeadLetter.MODEL_UNTRUSTED and "policy is unsigned" in letter.message
    (score,) = scores(server.on_records("wine", [rec(record(0))], ctx))
    assert score.model_version == "v1"  # the unsigned promote did not apply

    out = server.on_policy("wine", incoming(signed(promote, key), 3), ctx)
    assert not letters(out)
    assert StatsSnapshot.FromString(sinks(out, Sink.STATS)[0]).policy.version == 10
    (score,) = scores(server.on_records("wine", [rec(record(1), 1)], ctx))
    assert score.model_version == "v2"


def test_models_restored_from_state_are_not_verified_again(
    key: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics
) -> None:
    trust = Trust(trusted(key), required=True)
    ctx = MemoryKeyContext()
    server_for(trust, clock, metrics).on_model("wine", incoming(signed(descriptor("v1"), key)), ctx)
    # a new worker (a restart) with the state: the stored descriptor (self-contained) serves as it is
    (score,) = scores(server_for(trust, clock, metrics).on_records("wine", [rec(record(0))], ctx))
    assert score.model_version == "v1"


def test_without_required_signatures_signatures_are_not_checked(
    key: Ed25519PrivateKey, other: Ed25519PrivateKey, clock: ManualClock, metrics: CountingMetrics
) -> None:
    server = server_for(Trust(trusted(key), required=False), clock, metrics)
    ctx = MemoryKeyContext()
    assert not letters(server.on_model("wine", incoming(descriptor("v1").SerializeToString()), ctx))
    assert not letters(server.on_model("wine", incoming(signed(descriptor("v2"), other), 1), ctx))


# -- the CLI ------------------------------------------------------------------------------------------


def test_keys_generate_prints_both_paths_and_the_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "publisher"
    assert cli.main(["keys", "generate", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    public = signing.load_public_key(out / "public.pem")
    assert lines == [
        f"private key: {out / 'private.pem'}",
        f"public key: {out / 'public.pem'}",
        f"key id: {signing.key_id(public)}",
    ]
    assert cli.main(["keys", "generate", "--out", str(out)]) == ExitCode.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "is never overwritten" in err[0] and "--out" in err[1]


def test_sign_with_a_missing_key_file_is_a_usage_error_before_anything_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    nowhere = ["--bootstrap", f"127.0.0.1:{free_port()}"]
    model = str(WINE_DIR / "wine_quality_logreg.onnx")
    for command in (["publish-model", model], ["rollback", "wine"], ["promote", "wine"]):
        assert cli.main([*command, "--sign-with", str(missing), *nowhere]) == ExitCode.USAGE, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and str(missing) in err[0], err


def test_a_key_file_that_is_not_a_private_key_is_explained(tmp_path: Path) -> None:
    pair = signing.generate_key_pair(tmp_path)
    with pytest.raises(CliError) as raised:
        cli._signing_key(str(pair.public_path))
    error = raised.value
    assert error.code == ExitCode.USAGE and str(pair.public_path) in error.message
    assert "keys generate" in error.fix


def test_the_publishing_commands_take_sign_with() -> None:
    parser = cli.build_parser()
    for command in (["publish-model", "m.onnx"], ["rollout", "wine", "--canary", "v2", "--percent", "5"],
                    ["rollback", "wine"], ["promote", "wine", "v2"]):  # fmt: skip
        assert parser.parse_args([*command, "--sign-with", "k.pem"]).sign_with == "k.pem"
    args = parser.parse_args(["--require-signed-models", "--trusted-keys", "a.pem,b.pem", "settings"])
    settings = cli._settings(args)  # the key files made absolute: the job runs in the project's directory
    assert settings.require_signed_models
    assert settings.trusted_keys == f"{Path('a.pem').absolute()},{Path('b.pem').absolute()}"
