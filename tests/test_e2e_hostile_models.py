"""Hostile model files published to the real job without a local check (what `publish-model --no-check`
sends): each is dead-lettered MODEL_UNSAFE with the message naming what is wrong, nothing is written
outside the job's temporary directory (and no SavedModel directory is left in it), the job's Python
worker keeps its memory, and the good model keeps scoring."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from client import publish
from client.messages import decode_dead_letter, decode_score
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor
from tests.conftest import WINE_DIR, JobStarter, read_topic
from tests.processes import memory_kib, python_workers, running
from tests.test_hostile_models import (
    PMML,
    MiB,
    billion_laughs,
    external_entity_pmml,
    tar_archive,
    tar_bomb,
    tar_link,
    with_prolog,
    zip_archive,
    zip_symlink,
)

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"
D = ModelDescriptor
# small enough that every hostile message stays under the Kafka producer's default max.request.size
# (1 MB), which the job's sink uses for the dead letter carrying the model's bytes
MAX_MODEL_BYTES = 768 * 1024
MAX_UNPACKED_BYTES = 16 * MiB
MAX_ARCHIVE_ENTRIES = 100
# what the worker's peak memory may grow by while refusing all of them (a 512 MiB bomb is among them)
MEMORY_GROWTH_BOUND = 256 * MiB


def _padded_pmml(size: int) -> bytes:
    """The good PMML with a comment that makes it ``size`` bytes."""
    padding = size - len(PMML) - len(b"\n<!---->")
    return PMML + b"\n<!--" + b"x" * padding + b"-->"


def _hostile(tmp: Path, roots: Path) -> dict[str, tuple[ModelDescriptor, str]]:
    """name -> (descriptor, a part of the dead letter's message)."""
    (roots / "big.pmml").write_bytes(_padded_pmml(5 * MiB))

    def saved(payload: bytes) -> ModelDescriptor:
        return D(modeltype=D.TENSORFLOWSAVED, data=payload)

    limit = f"above the limit of {MAX_MODEL_BYTES} bytes (max_model_bytes)"
    return {
        "oversize-data": (
            D(modeltype=D.PMML, data=_padded_pmml(MAX_MODEL_BYTES + 1)),
            f"the model's data is {MAX_MODEL_BYTES + 1} bytes, {limit}",
        ),
        "oversize-location": (
            D(modeltype=D.PMML, location=str(roots / "big.pmml")),
            f"the file at location {str(roots / 'big.pmml')!r} is {5 * MiB} bytes, {limit}",
        ),
        # relative to the job's SavedModel directory under TMPDIR (tmp/job-tmp/modelstream-savedmodel-*)
        "zip-dot-dot": (
            saved(zip_archive(("../../escaped-dot-dot.pb", b"x"))),
            "archive entry '../../escaped-dot-dot.pb' points outside the archive",
        ),
        "tar-absolute": (
            saved(tar_archive((f"{tmp}/escaped-absolute.pb", b"x"))),
            f"archive entry '{tmp}/escaped-absolute.pb' has an absolute path, outside the archive",
        ),
        "tar-symlink": (
            saved(tar_archive(tar_link("model/saved_model.pb", tarfile.SYMTYPE, "/etc/passwd"))),
            "archive entry 'model/saved_model.pb' is a symbolic link to '/etc/passwd', not a plain file",
        ),
        "tar-hardlink": (
            saved(
                tar_archive(("model/a", b"x"), tar_link("model/saved_model.pb", tarfile.LNKTYPE, "model/a"))
            ),
            "archive entry 'model/saved_model.pb' is a hard link to 'model/a', not a plain file",
        ),
        "zip-symlink": (
            saved(zip_archive(zip_symlink("model/saved_model.pb", f"{tmp}/escaped-zip-link.pb"))),
            "archive entry 'model/saved_model.pb' is a symbolic link, not a plain file or directory",
        ),
        "too-many-entries": (
            saved(tar_archive(*((f"model/{i}", b"x") for i in range(MAX_ARCHIVE_ENTRIES + 1)))),
            f"the archive has more than {MAX_ARCHIVE_ENTRIES} entries (max_archive_entries)",
        ),
        # 512 MiB of zeros in about 520 KB
        "gzip-bomb": (
            saved(tar_bomb(512 * MiB)),
            f"the archive declares more than {MAX_UNPACKED_BYTES} bytes unpacked (max_unpacked_bytes), at "
            f"entry 'model/saved_model.pb' of {512 * MiB} bytes",
        ),
        "zip-bomb": (
            saved(zip_archive(("model/saved_model.pb", bytes(64 * MiB)))),
            f"the archive declares more than {MAX_UNPACKED_BYTES} bytes unpacked",
        ),
        "pmml-doctype": (
            D(modeltype=D.PMML, data=with_prolog("<!DOCTYPE PMML>")),
            "PMML document has a DOCTYPE declaration (DOCTYPE 'PMML'): DOCTYPE and ENTITY declarations "
            "are refused",
        ),
        "pmml-external-entity": (
            D(modeltype=D.PMML, data=external_entity_pmml(tmp)),
            "PMML document declares an entity 'field' (SYSTEM 'file:///",  # the path, shortened
        ),
        "pmml-billion-laughs": (
            D(modeltype=D.PMML, data=billion_laughs()),
            "PMML document declares an entity 'l0' in its DOCTYPE 'PMML'",
        ),
    }


def test_hostile_model_files_are_dead_lettered_unsafe_while_the_good_model_serves(
    stack_settings: Settings, start_job: JobStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = tmp_path / "models"
    roots.mkdir()
    job_tmp = tmp_path / "job-tmp"  # the job's TMPDIR: where it unpacks SavedModels
    job_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(job_tmp))  # the job inherits this process's environment
    settings = stack_settings.replace(
        model_roots=str(roots),
        max_model_bytes=MAX_MODEL_BYTES,
        max_unpacked_bytes=MAX_UNPACKED_BYTES,
        max_archive_entries=MAX_ARCHIVE_ENTRIES,
    )
    job = start_job(settings)
    good = D(name="good", dataType="wine", modeltype=D.PMML, version="good", data=PMML)
    publish.publish_model(settings, good)
    publish.publish_records(settings, CSV, count=20, id_prefix="before")
    assert len(read_topic(settings, settings.scores_topic, 20, job=job)) == 20

    hostile = _hostile(tmp_path, roots)

    def publish_hostile(name: str) -> None:
        descriptor = hostile[name][0]
        descriptor.name, descriptor.dataType, descriptor.version = name, "wine", name
        publish.publish_model(settings, descriptor)

    # the first hostile SavedModel brings TensorFlow into the worker: its memory is measured from there on
    publish_hostile("zip-dot-dot")
    assert len(read_topic(settings, settings.dead_letters_topic, 1, job=job)) == 1
    workers = python_workers(job)
    for pid in workers:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"TMPDIR={job_tmp}".encode() in environ, f"worker {pid} unpacks elsewhere"
    before = {pid: memory_kib(pid) for pid in workers}

    for name in hostile:
        if name != "zip-dot-dot":
            publish_hostile(name)
    values = read_topic(settings, settings.dead_letters_topic, len(hostile), job=job)
    by_version = {letter.model_version: letter for letter in map(decode_dead_letter, values)}
    assert sorted(by_version) == sorted(hostile), f"see the job's log, {tmp_path}/job-0.log"
    for name, (_, message) in hostile.items():
        letter = by_version[name]
        assert DeadLetter.Reason.Name(letter.reason) == "MODEL_UNSAFE", (name, letter.message)
        assert message in letter.message, (name, letter.message)
        assert letter.model_name == name and letter.data_type == "wine"

    # the good model kept serving through all of it
    publish.publish_records(settings, CSV, count=20, id_prefix="after")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 40, job=job)]
    after = [s for s in scores if s.record_id.startswith("after-")]
    assert len(after) == 20 and {s.model_version for s in after} == {"good"}

    # nothing written outside the job's temporary directory, no SavedModel directory left in it
    assert not list(tmp_path.glob("escaped*")), sorted(tmp_path.iterdir())
    assert not list(job_tmp.glob("modelstream-savedmodel-*"))
    # the same worker, its memory bounded: no archive was expanded into it
    assert job.poll() is None and all(map(running, workers)), "the job or its Python worker exited"
    for pid in workers:
        now = memory_kib(pid)
        grown = (now["VmHWM"] - before[pid]["VmHWM"]) * 1024
        assert grown < MEMORY_GROWTH_BOUND, f"worker {pid}: peak memory {before[pid]} -> {now}"
