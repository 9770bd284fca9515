"""Generate Python code and type stubs (.pyi) from the .proto files with the pinned grpcio-tools."""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent


def generate(out_dir: Path = PROTO_DIR) -> list[Path]:
    """Run protoc on every .proto in this package and return the files written to out_dir."""
    from grpc_tools import protoc  # dev dependency, only needed to regenerate

    protos = sorted(PROTO_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *map(str, protos),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


if __name__ == "__main__":
    for path in generate():
        print(path, file=sys.stderr)
