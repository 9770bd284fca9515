"""Imports run one way: the serving core imports no runtime, no Flink, no Kafka client, no CLI."""

from __future__ import annotations

import ast
import sys

import pytest

from modelstream.settings import PROJECT_ROOT

BANNED = {
    "modelstream": {"jobs", "client", "model", "pyflink", "confluent_kafka", "tensorflow", "onnxruntime"},
    "model": {"client", "jobs", "pyflink", "confluent_kafka"},
    "jobs": {"client"},
}


def imported_roots(tree: ast.AST) -> set[str]:
    """Top-level packages a module imports, nested imports included."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(BANNED))
def test_imports_run_one_way(package: str) -> None:
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        banned = imported_roots(ast.parse(path.read_text())) & BANNED[package]
        assert not banned, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(banned)}"


def test_the_check_sees_a_banned_import() -> None:
    assert imported_roots(ast.parse("def f():\n    from model import onnx_model\n")) == {"model"}


@pytest.mark.parametrize("package", ["modelstream", "model", "jobs", "protobufs"])
def test_no_module_shadows_the_standard_library(package: str) -> None:
    # `flink run --pyFiles` puts each shipped package's own folder on the workers' sys.path too
    shadowing = sorted(
        p.stem for p in (PROJECT_ROOT / package).glob("*.py") if p.stem in sys.stdlib_module_names
    )
    assert not shadowing, f"{package}/ modules named like standard ones: {shadowing}"
