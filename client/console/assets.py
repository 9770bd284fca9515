"""The console's chart library, uPlot, pinned and checked: `make setup` runs this module once to fetch
its npm tarball, verify the registry's sha512 integrity and keep the two files the page loads in
``.cache/console``, with a stamp file that holds the integrity they were checked against (so a new pin
fetches again). Nothing is fetched at run time: the stats service serves these files itself."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from modelstream.settings import PROJECT_ROOT

UPLOT_VERSION = "1.6.32"
UPLOT_TARBALL = f"https://registry.npmjs.org/uplot/-/uplot-{UPLOT_VERSION}.tgz"
UPLOT_INTEGRITY = (
    "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
)
ASSETS_DIR = PROJECT_ROOT / ".cache" / "console"
# tarball member -> the name the page loads it by
FILES = {"package/dist/uPlot.iife.min.js": "uPlot.iife.min.js", "package/dist/uPlot.min.css": "uPlot.min.css"}
# holds the integrity string the files were checked against; written last
STAMP = "uplot.integrity"


def installed(directory: Path = ASSETS_DIR, integrity: str = UPLOT_INTEGRITY) -> bool:
    """Whether ``directory`` holds the files of the pinned tarball (its stamp names ``integrity``)."""
    try:
        stamp = (directory / STAMP).read_text().strip()
    except OSError:
        return False
    return stamp == integrity and all((directory / name).is_file() for name in FILES.values())


def verify(tarball: bytes, integrity: str = UPLOT_INTEGRITY) -> None:
    """Raise ValueError unless ``tarball`` matches the npm registry's integrity string."""
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise ValueError(f"uplot {UPLOT_VERSION} tarball does not match its pinned {algorithm} integrity")


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it: never a half-written file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # as an ordinary file would be, not mkstemp's 0600
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unpack(tarball: bytes, directory: Path, integrity: str = UPLOT_INTEGRITY) -> None:
    """Keep the page's files of a checked ``tarball`` in ``directory``, then the stamp naming
    ``integrity``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STAMP).unlink(missing_ok=True)  # not installed until every file is in place
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, name in FILES.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                raise ValueError(f"uplot tarball has no file {member}")
            _write(directory / name, extracted.read())
    _write(directory / STAMP, integrity.encode() + b"\n")


def fetch(directory: Path = ASSETS_DIR) -> None:
    with urllib.request.urlopen(UPLOT_TARBALL, timeout=60) as response:
        tarball: bytes = response.read()
    verify(tarball)
    unpack(tarball, directory)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS_DIR
    if not installed(target):
        fetch(target)
    print(f"console assets: uPlot {UPLOT_VERSION} in {target}")
