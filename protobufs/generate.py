"""Generate Python code and type stubs (.pyi) from the .proto files with the pinned grpcio-tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent


def generate(out_dir: Path = PROTO_DIR) -> list[Path]:
    """Run protoc on every .proto in this package and return the files written to out_dir."""
    protos = sorted(PROTO_DIR.glob("*.proto"))
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",  # dev dependency, only needed to regenerate
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *map(str, protos),
    ]
    # a process of its own: protoc's C++ protobuf must not meet TensorFlow's in one process
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("protoc failed: " + " ".join(args) + "\n" + done.stderr)
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


if __name__ == "__main__":
    for path in generate():
        print(path, file=sys.stderr)
