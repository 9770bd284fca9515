"""SavedModel directories as bytes: packing to tar.gz, unpacking zip or tar.gz safely, resolving locations."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

from modelstream.contract import ModelLoadError

SAVED_MODEL_FILE = "saved_model.pb"


def pack_directory(directory: Path) -> bytes:
    """A deterministic tar.gz of ``directory``'s files (sorted names, zero times), paths relative to it."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buffer.getvalue()


def unpack(payload: bytes, destination: Path) -> None:
    """Extract a zip or tar(.gz) archive into ``destination``; refuses links and paths that leave it."""
    root = destination.resolve()

    def safe_target(name: str) -> Path:
        target = (root / name).resolve()
        if target != root and root not in target.parents:
            raise ModelLoadError(f"archive entry {name!r} points outside the archive")
        return target

    if payload[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                for entry in archive.infolist():
                    safe_target(entry.filename)
                archive.extractall(root)
        except zipfile.BadZipFile as e:
            raise ModelLoadError(f"not a valid zip archive: {e}") from e
        return
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise ModelLoadError(f"archive entry {member.name!r} is not a plain file or directory")
                safe_target(member.name)
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise ModelLoadError(f"not a zip or tar.gz archive of a SavedModel: {e}") from e


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


def read_location(location: str, allowed_roots: tuple[str, ...]) -> bytes:
    """A location's model bytes: a file as it is, a directory packed with ``pack_directory``."""
    path = resolve_location(location, allowed_roots)
    return pack_directory(path) if path.is_dir() else path.read_bytes()
