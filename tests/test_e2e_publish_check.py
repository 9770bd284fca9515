"""publish-model checks a model before publishing it, with the job's own admission code: what the real job
would dead-letter is refused locally with the same reason and message; --no-check sends it to the job,
which dead-letters it with exactly that reason and message."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from client import cli
from client.errors import ExitCode
from client.messages import decode_dead_letter, decode_score
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import DeadLetter
from tests.conftest import WINE_DIR, JobStarter, read_topic
from tests.test_models import SAVED_DIR

pytestmark = pytest.mark.e2e
LOANS = PROJECT_ROOT / "data" / "loans"
REFUSED = re.compile(r"^modelstream: refused: (\w+): (.*)$", re.MULTILINE)


def _broken_models(tmp: Path) -> dict[str, tuple[Path, str, list[str]]]:
    """name -> (file, data type, extra flags) of models the job must not let serve."""
    corrupt_saved = tmp / "corrupt-saved"
    shutil.copytree(SAVED_DIR, corrupt_saved)
    (corrupt_saved / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    missing_field = (WINE_DIR / "winequalityLinearRegression.pmml").read_text()
    files = {
        "corrupt.onnx": b"garbage",
        "corrupt.pmml": b"<PMML><not closed",
        "corrupt.pb": b"\xff\xffcorrupt",
        # a field wine records lack: PMML's missing value, and this regression then predicts nothing
        "missing-field.pmml": missing_field.replace('"chlorides"', '"saltiness"').encode(),
    }
    for name, content in files.items():
        (tmp / name).write_bytes(content)
    cases: dict[str, tuple[Path, str, list[str]]] = {name: (tmp / name, "wine", []) for name in files}
    cases["corrupt-saved"] = (corrupt_saved, "wine", ["--type", "tensorflow-saved"])
    # the digits MLP's input is not a field of the loan records the data type's schema declares
    cases["digits-for-loans"] = (PROJECT_ROOT / "data" / "digits" / "digits_mlp.onnx", "loans-check", [])
    return cases


def test_publish_model_refuses_what_the_job_would_reject_with_the_same_reason(
    stack_settings: Settings,
    start_job: JobStarter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = stack_settings.replace(model_roots=str(WINE_DIR))
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    job = start_job(settings)
    schema = ["publish-schema", str(LOANS / "loans.desc"), "--message", "loans.LoanApplication"]
    assert cli.main([*schema[:-1], "loans.Nope", "--data-type", "loans-check"]) == ExitCode.REJECTED
    assert "refused: SCHEMA_INVALID: record schema: no message 'loans.Nope'" in capsys.readouterr().err
    assert cli.main([*schema, "--data-type", "loans-check"]) == 0
    good = ["publish-model", str(WINE_DIR / "winequalityDecisionTreeClassification.pmml")]
    assert cli.main([*good, "--version", "good"]) == 0
    capsys.readouterr()

    broken = _broken_models(tmp_path)
    refused: dict[str, tuple[str, str]] = {}
    for name, (path, data_type, flags) in broken.items():
        command = ["publish-model", str(path), "--data-type", data_type, "--version", name, *flags]
        assert cli.main(command) == ExitCode.REJECTED, name
        err = capsys.readouterr().err
        # the refusal and its fix are the last two lines (a runtime may log before them)
        assert "Traceback" not in err and "--no-check" in err.strip().splitlines()[-1], err
        found = REFUSED.search(err)
        assert found, err
        refused[name] = (found[1], found[2])
    assert refused["corrupt.onnx"][0] == "MODEL_BUILD_FAILED"
    assert refused["missing-field.pmml"][0] == "MODEL_VALIDATION_FAILED"
    assert refused["digits-for-loans"][0] == "MODEL_INPUTS_UNBOUND"

    # nothing refused was published: the models topic holds the schema and the good model only
    assert len(read_topic(settings, settings.models_topic, 2, job=job)) == 2
    for name, (path, data_type, flags) in broken.items():
        command = ["publish-model", str(path), "--data-type", data_type, "--version", name, *flags]
        assert cli.main([*command, "--no-check"]) == 0, name
    letters = read_topic(settings, settings.dead_letters_topic, len(refused), job=job)
    by_version = {d.model_version: d for d in map(decode_dead_letter, letters)}
    assert sorted(by_version) == sorted(refused)
    for name, (reason, message) in refused.items():
        letter = by_version[name]
        assert (DeadLetter.Reason.Name(letter.reason), letter.message) == (reason, message), name

    # the good model kept serving through all of it
    assert cli.main(["publish-data", str(WINE_DIR / "winequality_red.csv"), "--count", "20"]) == 0
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 20, job=job)]
    assert {s.model_version for s in scores} == {"good"}
