"""Hostile model files are refused as MODEL_UNSAFE, with a message naming what is wrong, before anything
is built from them or written outside the SavedModel's temporary directory (which is removed): models
above the size limit, archives with entries leaving their directory, links, too many entries or too many
bytes (zip and gzip bombs), PMML documents with a DOCTYPE or entities, with either PMML engine."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from model import pmml_model
from modelstream import archive
from modelstream.admission import ModelRejected, admit
from modelstream.archive import pack_directory
from modelstream.codecs.protobuf import UserSchemas
from modelstream.contract import ModelOptions
from modelstream.deadletters import Reason
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import ModelDescriptor
from tests.conftest import WINE_DIR
from tests.test_models import SAVED_DIR

D = ModelDescriptor
MiB = 1024 * 1024
PMML = (WINE_DIR / "winequalityLinearRegression.pmml").read_bytes()
ENGINES = ("jpmml", "pypmml")


class Sandbox:
    """A test's directory, the temporary directory of SavedModels unpacked inside it (``temp``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp = root / "tmp"
        self.temp.mkdir()

    def listing(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*")}

    def refused(
        self,
        descriptor: ModelDescriptor,
        options: ModelOptions,
        reason: Reason = Reason.MODEL_UNSAFE,
    ) -> str:
        """The message ``admit`` rejects ``descriptor`` with, asserting the reason and that nothing was
        written anywhere in the sandbox (the unpacking directory is gone)."""
        before = self.listing()
        descriptor.name, descriptor.dataType = descriptor.name or "hostile", "wine"
        with pytest.raises(ModelRejected) as rejected:
            admit(descriptor, options, "wine", None, UserSchemas())
        assert Reason.Name(rejected.value.reason) == Reason.Name(reason), rejected.value.message
        assert self.listing() == before
        assert not list(self.temp.iterdir())
        return rejected.value.message


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    importlib.import_module("model.tensorflow_saved")  # TensorFlow imported before the temp dir moves
    box = Sandbox(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(box.temp))
    return box


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The PMML engines asked to parse a document during the test."""
    calls: list[str] = []
    original = pmml_model._engine

    def spy(name: str, payload: bytes) -> pmml_model._Engine:
        calls.append(name)
        return original(name, payload)

    monkeypatch.setattr(pmml_model, "_engine", spy)
    yield calls


# -- building hostile archives ---------------------------------------------------------------------------


def tar_archive(*members: tarfile.TarInfo | tuple[str, bytes], gz: bool = True) -> bytes:
    """A tar(.gz) of files given as (name, data) and of other entries given as TarInfo."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def tar_link(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def zip_archive(*entries: tuple[str | zipfile.ZipInfo, bytes], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries:
            zipped.writestr(name, data)
        zipped.comment = comment
    return buffer.getvalue()


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the mode is in the upper bits of external_attr
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@functools.cache
def _zeros_gz() -> bytes:
    """64 MiB of zeros as one gzip member (about 64 KB)."""
    return gzip.compress(bytes(64 * MiB), mtime=0)


def gzip_bomb(size: int, header: bytes = b"", whole: bool = True) -> bytes:
    """``header`` then ``size`` zero bytes (a multiple of 64 MiB), gzipped: gzip members of 64 MiB each,
    concatenated (a gzip stream may hold several), so 2 GiB takes about 2 MB and no time to build.
    Not ``whole``: cut after the first 64 MiB."""
    zeros = _zeros_gz() * (size // (64 * MiB) if whole else 1)
    return gzip.compress(header, mtime=0) + zeros + (gzip.compress(bytes(1024), mtime=0) if whole else b"")


def tar_bomb(size: int, whole: bool = True) -> bytes:
    """A tar.gz of one file of ``size`` zero bytes."""
    info = tarfile.TarInfo("model/saved_model.pb")
    info.size = size
    return gzip_bomb(size, info.tobuf(format=tarfile.GNU_FORMAT), whole)


def _saved(payload: bytes) -> ModelDescriptor:
    return D(modeltype=D.TENSORFLOWSAVED, data=payload)


# -- archives ----------------------------------------------------------------------------------------------

SMALL = ModelOptions(max_unpacked_bytes=MiB, max_archive_entries=10)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda box: zip_archive(("../../escaped.pb", b"x")),
            "entry '../../escaped.pb' points outside the archive",
        ),
        (
            lambda box: tar_archive(("model/../../../escaped.pb", b"x")),
            "'model/../../../escaped.pb' points outside",
        ),
        (lambda box: zip_archive((f"{box.root}/escaped.pb", b"x")), "escaped.pb' has an absolute path"),
        (
            lambda box: tar_archive((f"{box.root}/escaped.pb", b"x"), gz=False),
            "escaped.pb' has an absolute path",
        ),
        (
            lambda box: tar_archive(tar_link("model/saved_model.pb", tarfile.SYMTYPE, "/etc/passwd")),
            "entry 'model/saved_model.pb' is a symbolic link to '/etc/passwd', not a plain file or directory",
        ),
        (
            lambda box: tar_archive(
                ("model/a", b"x"), tar_link("model/saved_model.pb", tarfile.LNKTYPE, "model/a")
            ),
            "entry 'model/saved_model.pb' is a hard link to 'model/a'",
        ),
        (
            lambda box: zip_archive(zip_symlink("model/saved_model.pb", f"{box.root}/escaped.pb")),
            "entry 'model/saved_model.pb' is a symbolic link, not a plain file or directory",
        ),
        (
            lambda box: tar_archive(tar_link("model/pipe", tarfile.FIFOTYPE)),
            "'model/pipe' is a device or FIFO",
        ),
        (
            lambda box: tar_archive(*((f"model/{i}", b"x") for i in range(11))),
            "the archive has more than 10 entries (max_archive_entries)",
        ),
        (
            lambda box: zip_archive(*((f"model/{i}", b"x") for i in range(11)), comment=b"a comment"),
            "the archive has more than 10 entries",
        ),
        (
            lambda box: tar_archive(*((f"model/{i}", bytes(MiB // 2)) for i in range(3))),
            "declares more than 1048576 bytes unpacked (max_unpacked_bytes), at entry 'model/2' of 524288",
        ),
        # a gzip bomb: 2 GiB of zeros in about 2 MB, refused from its header, never expanded
        (lambda box: tar_bomb(2048 * MiB), "at entry 'model/saved_model.pb' of 2147483648 bytes"),
        # the same cut after 64 MiB: had its data been read, that would fail otherwise
        (lambda box: tar_bomb(2048 * MiB, whole=False), "declares more than 1048576 bytes unpacked"),
        (
            lambda box: zip_archive(("model/saved_model.pb", bytes(64 * MiB))),
            "declares more than 1048576 bytes",
        ),
    ],
    ids=[
        "zip-dot-dot",
        "tar-dot-dot",
        "zip-absolute",
        "tar-absolute",
        "tar-symlink",
        "tar-hardlink",
        "zip-symlink",
        "tar-fifo",
        "tar-too-many-entries",
        "zip-too-many-entries",
        "tar-too-many-bytes",
        "tar-gzip-bomb",
        "tar-gzip-bomb-cut",
        "zip-bomb",
    ],
)
def test_hostile_archives_are_refused_before_anything_is_written(
    sandbox: Sandbox, make: object, message: str
) -> None:
    payload = make(sandbox)  # type: ignore[operator]
    assert message in sandbox.refused(_saved(payload), SMALL)


def test_a_zip64_archive_s_entries_are_counted_before_zipfile_reads_them(sandbox: Sandbox) -> None:
    payload = zip_archive(
        *((f"m/{i}", b"") for i in range(0x10000))
    )  # more than 65535 entries: zip64 records
    assert payload[-22 - 20 : -22 - 16] == b"PK\x06\x07"
    assert "more than 10 entries" in sandbox.refused(_saved(payload), SMALL)


def test_bytes_written_are_counted_where_a_declared_size_lies(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = archive._tar_entries

    def lying(tar: tarfile.TarFile) -> Iterator[archive._Entry]:
        for entry in honest(tar):
            yield dataclasses.replace(entry, size=0)

    monkeypatch.setattr(archive, "_tar_entries", lying)
    payload = tar_archive(("model/variables/a", bytes(MiB // 2)), ("model/saved_model.pb", bytes(4 * MiB)))
    message = sandbox.refused(_saved(payload), SMALL)  # a part was written, then removed
    assert "expands past 1048576 bytes (max_unpacked_bytes) at entry 'model/saved_model.pb'" in message


def test_a_gzip_bomb_that_is_no_tar_is_read_to_its_first_block_only(sandbox: Sandbox) -> None:
    # 2 GiB of zeros: the first zero block ends a tar, and nothing follows it is read
    message = sandbox.refused(_saved(gzip_bomb(2048 * MiB)), SMALL, Reason.MODEL_BUILD_FAILED)
    assert message == "expected one saved_model.pb in the archive, found none"


def test_an_archive_within_the_limits_loads(sandbox: Sandbox) -> None:
    files = [p for p in SAVED_DIR.rglob("*") if p.is_file()]
    exact = ModelOptions(
        max_unpacked_bytes=sum(p.stat().st_size for p in files), max_archive_entries=len(files)
    )
    model, _ = admit(_saved(pack_directory(SAVED_DIR)), exact, "wine", None, UserSchemas())
    assert len(list(sandbox.temp.iterdir())) == 1
    model.close()
    for tighter in (
        dataclasses.replace(exact, max_unpacked_bytes=exact.max_unpacked_bytes - 1),
        dataclasses.replace(exact, max_archive_entries=exact.max_archive_entries - 1),
    ):
        sandbox.refused(_saved(pack_directory(SAVED_DIR)), tighter)


# -- sizes and locations ----------------------------------------------------------------------------------


def test_a_model_above_the_size_limit_is_refused_before_an_engine_sees_it(
    sandbox: Sandbox, engine_calls: list[str]
) -> None:
    options = ModelOptions(max_model_bytes=len(PMML) - 1)
    message = sandbox.refused(D(modeltype=D.PMML, data=PMML), options)
    assert message == f"the model's data is {len(PMML)} bytes, above the limit of {len(PMML) - 1} bytes " + (
        "(max_model_bytes)"
    )
    assert engine_calls == []
    admit(
        D(modeltype=D.PMML, data=PMML), ModelOptions(max_model_bytes=len(PMML)), "wine", None, UserSchemas()
    )
    assert engine_calls == ["jpmml"]


def test_a_location_above_the_size_limit_is_refused_before_it_is_read(sandbox: Sandbox) -> None:
    roots = sandbox.root / "models"
    shutil.copytree(SAVED_DIR, roots / "saved")
    shutil.copy(WINE_DIR / "winequalityLinearRegression.pmml", roots / "model.pmml")
    size = sum(p.stat().st_size for p in (roots / "saved").rglob("*") if p.is_file())
    options = ModelOptions(allowed_roots=(str(roots),), max_model_bytes=size - 1)
    location = str(roots / "saved")
    message = sandbox.refused(D(modeltype=D.TENSORFLOWSAVED, location=location), options)
    assert (
        message
        == f"the files at location {location!r} hold {size} bytes, above the limit of {size - 1} "
        + ("bytes (max_model_bytes)")
    )
    small = dataclasses.replace(options, max_model_bytes=len(PMML) - 1)
    message = sandbox.refused(D(modeltype=D.PMML, location=str(roots / "model.pmml")), small)
    assert message.startswith(f"the file at location {str(roots / 'model.pmml')!r} is {len(PMML)} bytes")


def test_a_location_with_a_link_out_of_it_or_not_a_file_is_refused(sandbox: Sandbox) -> None:
    roots = sandbox.root / "models"
    shutil.copytree(SAVED_DIR, roots / "saved")
    secret = sandbox.root / "secret.txt"
    secret.write_text("not for models")
    (roots / "saved" / "variables" / "leak").symlink_to(secret)
    options = ModelOptions(allowed_roots=(str(roots),))
    message = sandbox.refused(D(modeltype=D.TENSORFLOWSAVED, location=str(roots / "saved")), options)
    assert message.endswith("holds 'variables/leak', a symbolic link to outside it")
    os.mkfifo(roots / "pipe.pmml")
    message = sandbox.refused(D(modeltype=D.PMML, location=str(roots / "pipe.pmml")), options)
    assert message.endswith("pipe.pmml' is not a regular file or directory")


def test_the_limits_are_settings() -> None:
    options = Settings(max_model_bytes=1, max_unpacked_bytes=2, max_archive_entries=3).model_options()
    assert (options.max_model_bytes, options.max_unpacked_bytes, options.max_archive_entries) == (1, 2, 3)
    defaults = Settings().model_options()
    assert defaults.max_model_bytes == ModelOptions().max_model_bytes == 256 * MiB


# -- PMML: DOCTYPEs and entities ---------------------------------------------------------------------------


def with_prolog(prolog: str, body: bytes = PMML, encoding: str = "utf-8") -> bytes:
    return (prolog + "\n" + body.decode()).encode(encoding)


def external_entity_pmml(directory: Path) -> bytes:
    """PMML whose external entities pull a DataField and a MiningField from local files."""
    (directory / "field.xml").write_text(
        '<DataField name="secret_from_file" optype="continuous" dataType="double"/>'
    )
    (directory / "mining.xml").write_text('<MiningField name="secret_from_file"/>')
    body = PMML.replace(b"<DataDictionary>", b"<DataDictionary>&field;")
    body = body.replace(b"<MiningSchema>", b"<MiningSchema>&mining;")
    doctype = (
        f'<!DOCTYPE PMML [<!ENTITY field SYSTEM "file://{directory}/field.xml">'
        f'<!ENTITY mining SYSTEM "file://{directory}/mining.xml">]>'
    )
    return with_prolog(doctype, body)


def billion_laughs() -> bytes:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = PMML.replace(b'name="JPMML-SparkML"', b'name="&l9;"')
    return with_prolog(f'<!DOCTYPE PMML [<!ENTITY l0 "lol">{entities}]>', body)


HOSTILE_PMML: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "doctype": (lambda d: with_prolog("<!DOCTYPE PMML>"), "has a DOCTYPE declaration (DOCTYPE 'PMML')"),
    "external-dtd": (
        lambda d: with_prolog('<?xml version="1.0"?><!DOCTYPE PMML SYSTEM "http://127.0.0.1:9/pmml.dtd">'),
        "has a DOCTYPE declaration (DOCTYPE 'PMML' SYSTEM 'http://127.0.0.1:9/pmml.dtd')",
    ),
    "external-entity": (external_entity_pmml, "declares an entity 'field' (SYSTEM 'file://"),
    "billion-laughs": (lambda d: billion_laughs(), "declares an entity 'l0' in its DOCTYPE 'PMML'"),
    "parameter-entity": (
        lambda d: with_prolog('<!DOCTYPE PMML [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'),
        "declares a parameter entity 'p' (SYSTEM 'http://127.0.0.1:9/p.dtd')",
    ),
    "utf-16": (
        lambda d: with_prolog('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE PMML []>', encoding="utf-16"),
        "has a DOCTYPE declaration (DOCTYPE 'PMML', with an internal subset)",
    ),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(HOSTILE_PMML))
def test_pmml_with_a_doctype_or_entities_is_refused_before_either_engine_sees_it(
    sandbox: Sandbox, engine_calls: list[str], engine: str, case: str
) -> None:
    make, message = HOSTILE_PMML[case]
    payload = make(sandbox.root)
    refused = sandbox.refused(D(modeltype=D.PMML, data=payload), ModelOptions(pmml_engine=engine))
    assert refused.startswith("PMML document ") and message in refused, refused
    assert refused.endswith(": DOCTYPE and ENTITY declarations are refused")
    assert engine_calls == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pmml_prolog_that_cannot_be_screened_is_refused_and_a_plain_one_loads(
    engine_calls: list[str], engine: str
) -> None:
    options = ModelOptions(pmml_engine=engine)
    # declared in an encoding the screen cannot read: an engine reading it as UTF-8 would see the DOCTYPE
    undeclared = with_prolog('<?xml version="1.0" encoding="UTF-32"?><!DOCTYPE PMML>')
    with pytest.raises(ModelRejected, match="not well-formed XML before its root element") as rejected:
        admit(D(modeltype=D.PMML, data=undeclared), options, "wine", None, UserSchemas())
    assert rejected.value.reason == Reason.MODEL_BUILD_FAILED
    assert engine_calls == []
    plain = with_prolog(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment --><?a-processing instruction?>'
    )
    model, _ = admit(D(modeltype=D.PMML, data=plain), options, "wine", None, UserSchemas())
    model.close()
    assert engine_calls == [engine]


def test_unscreened_the_engines_do_what_docs_security_md_says(tmp_path: Path) -> None:
    """JPMML refuses any DOCTYPE itself; pypmml reads local files through external entities (and fetches
    URLs, expands internal entities): the screen is what stops it."""
    hostile = external_entity_pmml(tmp_path)
    with pytest.raises(Exception, match="UnmarshalException"):
        pmml_model._Jpmml(with_prolog("<!DOCTYPE PMML>"))
    with pytest.raises(Exception, match="UnmarshalException"):
        pmml_model._Jpmml(hostile)
    assert "secret_from_file" in pmml_model._Pypmml(hostile).signature.inputs
