"""SavedModel directories as bytes: packing to tar.gz, unpacking zip or tar.gz safely, resolving locations."""

from __future__ import annotations

import functools
import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from modelstream.contract import ModelLoadError, UnsafeModel
from modelstream.screening import check_size

SAVED_MODEL_FILE = "saved_model.pb"


def pack_directory(directory: Path) -> bytes:
    """A deterministic tar.gz of ``directory``'s files (sorted names, zero times), paths relative to it."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in _files(directory):
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buffer.getvalue()


def _files(directory: Path) -> list[Path]:
    """The files below ``directory`` (symbolic links to files too), sorted."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


@dataclass(frozen=True)
class _Entry:
    """One entry of an archive, as the archive declares it."""

    name: str
    kind: str  # "file", "directory", or what else it is ("a symbolic link to 'x'")
    size: int  # unpacked
    read: Callable[[], IO[bytes]]


def unpack(payload: bytes, destination: Path, max_bytes: int, max_entries: int) -> None:
    """Extract a zip or tar(.gz) archive into ``destination``.

    Before anything is written, every entry is checked: an entry whose path leaves ``destination`` (an
    absolute path, ``..``), a link (symbolic or hard, zip symlinks too) or a special file, more than
    ``max_entries`` entries or more than ``max_bytes`` declared unpacked are refused (UnsafeModel); a
    tar's headers are read only until one is refused, so a gzip bomb is never expanded. While writing,
    the bytes written are counted too (a declared size may lie): extraction stops past ``max_bytes``.
    On any refusal ``destination`` may hold a part of the archive: the caller removes it."""
    root = destination.resolve()
    is_zip = payload[:4] == b"PK\x03\x04"
    try:
        if is_zip:
            _check_zip_entry_count(payload, max_entries)  # before zipfile reads every entry into memory
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                entries: Iterable[_Entry] = map(_zip_entry(archive), archive.infolist())
                _extract(_screen(entries, root, max_bytes, max_entries), max_bytes)
        else:
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                _extract(_screen(_tar_entries(tar), root, max_bytes, max_entries), max_bytes)
    except ModelLoadError:
        raise
    except Exception as e:  # whatever reading hostile bytes raises, the archive is broken
        kind = "not a valid zip archive" if is_zip else "not a zip or tar.gz archive of a SavedModel"
        raise ModelLoadError(f"{kind}: {e}") from e


def _screen(
    entries: Iterable[_Entry], root: Path, max_bytes: int, max_entries: int
) -> list[tuple[_Entry, Path]]:
    """Each entry with the path it unpacks to, once all are known to be safe (read lazily: the first
    refusal stops the reading)."""
    safe: list[tuple[_Entry, Path]] = []
    declared = 0
    for entry in entries:
        if len(safe) == max_entries:
            raise UnsafeModel(f"the archive has more than {max_entries} entries (max_archive_entries)")
        if entry.kind not in ("file", "directory"):
            raise UnsafeModel(f"archive entry {entry.name!r} is {entry.kind}, not a plain file or directory")
        target = _target(root, entry.name)
        declared += entry.size
        if declared > max_bytes:
            raise UnsafeModel(
                f"the archive declares more than {max_bytes} bytes unpacked (max_unpacked_bytes), "
                f"at entry {entry.name!r} of {entry.size} bytes"
            )
        safe.append((entry, target))
    return safe


def _target(root: Path, name: str) -> Path:
    """Where entry ``name`` unpacks to under ``root``; UnsafeModel if that is not under it."""
    if PurePosixPath(name).is_absolute():
        raise UnsafeModel(f"archive entry {name!r} has an absolute path, outside the archive")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise UnsafeModel(f"archive entry {name!r} points outside the archive")
    return target


def _extract(entries: list[tuple[_Entry, Path]], max_bytes: int) -> None:
    """Write screened entries, counting the bytes written: UnsafeModel past ``max_bytes``."""
    written = 0
    for entry, target in entries:
        if entry.kind == "directory":
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with entry.read() as source, open(target, "wb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UnsafeModel(
                        f"the archive expands past {max_bytes} bytes (max_unpacked_bytes) at entry "
                        f"{entry.name!r}, more than it declares"
                    )
                sink.write(chunk)


_CHUNK = 1024 * 1024


def _zip_entry(archive: zipfile.ZipFile) -> Callable[[zipfile.ZipInfo], _Entry]:
    def entry(info: zipfile.ZipInfo) -> _Entry:
        file_type = stat.S_IFMT(info.external_attr >> 16)  # unix mode, where the zip was made on unix
        if info.is_dir():
            kind = "directory"
        elif file_type in (0, stat.S_IFREG):
            kind = "file"
        elif file_type == stat.S_IFLNK:
            kind = "a symbolic link"
        else:
            kind = f"a special file (mode {file_type:#o})"
        return _Entry(info.filename, kind, info.file_size, functools.partial(archive.open, info))

    return entry


def _tar_entries(tar: tarfile.TarFile) -> Iterator[_Entry]:
    """The entries of a tar, each header read only when the one before has passed the screen."""
    while (member := tar.next()) is not None:
        if member.isdir():
            kind = "directory"
        elif member.isfile():
            kind = "file"
        elif member.issym():
            kind = f"a symbolic link to {member.linkname!r}"
        elif member.islnk():
            kind = f"a hard link to {member.linkname!r}"
        else:
            kind = "a device or FIFO" if member.isdev() else f"of tar type {member.type!r}"
        yield _Entry(member.name, kind, member.size, functools.partial(_tar_member, tar, member))


def _tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    reader = tar.extractfile(member)
    if reader is None:
        raise ModelLoadError(f"archive entry {member.name!r} has no data")
    return reader


_END_OF_CENTRAL_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_CENTRAL_DIRECTORY_ENTRY = b"PK\x01\x02"


def _check_zip_entry_count(payload: bytes, max_entries: int) -> None:
    """Refuse a zip whose central directory lists more than ``max_entries`` entries, counted where
    zipfile finds them (damage is left for zipfile to report)."""
    end = len(payload) - 22
    if payload[end : end + 4] != _END_OF_CENTRAL_DIRECTORY or payload[-2:] != b"\0\0":
        end = payload.rfind(_END_OF_CENTRAL_DIRECTORY, max(0, len(payload) - 22 - 0xFFFF))
    if end < 0:
        return
    (size,) = struct.unpack_from("<L", payload, end + 12)
    directory_end = end
    if end >= 76 and payload[end - 20 : end - 16] == _ZIP64_LOCATOR:  # zip64: its record before the locator
        directory_end = end - 20 - 56
        (size,) = struct.unpack_from("<Q", payload, directory_end + 40)
    position, count = directory_end - size, 0
    while 0 <= position < directory_end and payload[position : position + 4] == _CENTRAL_DIRECTORY_ENTRY:
        count += 1
        if count > max_entries:
            raise UnsafeModel(f"the archive has more than {max_entries} entries (max_archive_entries)")
        name, extra, comment = struct.unpack_from("<3H", payload, position + 28)
        position += 46 + name + extra + comment


def find_saved_model(root: Path) -> Path:
    """The directory holding saved_model.pb: ``root`` itself or the one directory below it that has it."""
    if (root / SAVED_MODEL_FILE).is_file():
        return root
    found = sorted(p.parent for p in root.rglob(SAVED_MODEL_FILE))
    if len(found) != 1:
        detail = "none" if not found else ", ".join(str(p.relative_to(root)) for p in found)
        raise ModelLoadError(f"expected one {SAVED_MODEL_FILE} in the archive, found {detail}")
    return found[0]


def resolve_location(location: str, allowed_roots: tuple[str, ...]) -> Path:
    """The real path of ``location``, which must exist under one of ``allowed_roots``."""
    if not allowed_roots:
        raise ModelLoadError("models by location are disabled: no allowed roots configured (model_roots)")
    path = Path(os.path.realpath(location))
    roots = [Path(os.path.realpath(r)) for r in allowed_roots]
    if not any(path == r or r in path.parents for r in roots):
        raise ModelLoadError(f"location {location!r} is outside the allowed roots {[str(r) for r in roots]}")
    if not path.exists():
        raise ModelLoadError(f"location {location!r} does not exist")
    return path


def read_location(location: str, allowed_roots: tuple[str, ...], max_bytes: int) -> bytes:
    """A location's model bytes: a file as it is, a directory packed with ``pack_directory``. Refused
    (UnsafeModel) before it is read: files of more than ``max_bytes`` in all, a symbolic link in a
    directory that leads out of it, anything but a regular file or a directory (a FIFO would block)."""
    path = resolve_location(location, allowed_roots)
    if path.is_dir():
        files = _files(path)
        for file in files:
            if path not in file.resolve().parents:
                link = file.relative_to(path).as_posix()
                raise UnsafeModel(f"location {location!r} holds {link!r}, a symbolic link to outside it")
        total = sum(f.stat().st_size for f in files)
        check_size(f"the files at location {location!r} hold", total, max_bytes)
        return pack_directory(path)
    if not path.is_file():
        raise UnsafeModel(f"location {location!r} is not a regular file or directory")
    check_size(f"the file at location {location!r} is", path.stat().st_size, max_bytes)
    with open(path, "rb") as f:
        payload = f.read(max_bytes + 1)  # it may have grown since
    check_size(f"the file at location {location!r} is", len(payload), max_bytes)
    return payload
