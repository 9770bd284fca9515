"""JPMML-Evaluator inside Flink's own JVM, for PyFlink's thread mode.

In thread mode the Python functions run in the TaskManager's JVM through pemja, so JPype cannot start a
JVM of its own there. The jpmml_evaluator package's jars go on that JVM's class path instead (Flink's
launch scripts and PyFlink's gateway add ``HADOOP_CLASSPATH`` to it: ``with_jpmml_classpath``), and
jpmml_evaluator talks to them through a pemja backend (``bind``).

pemja's ``findClass`` only resolves classes reliably while a function is being opened (later, from
``process_element``, it fails or crashes the JVM), so ``bind`` resolves every class the evaluator needs
from the function's ``open``, once per task thread; each thread's backend then only calls what it holds,
and only from that thread (pemja has no Java environment on other threads).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

# what jpmml_evaluator asks its backend for when it builds an evaluator from bytes and scores
CLASSES = (
    "org.jpmml.evaluator.LoadingModelEvaluatorBuilder",
    "java.io.ByteArrayInputStream",
    "org.jpmml.evaluator.python.PythonEvaluatorUtil",
)
# Flink's JVM already has SLF4J bound to its Log4j; jpmml_evaluator's SLF4J 2 would unbind it
_NOT_ON_FLINK = ("slf4j-",)


def jars() -> list[Path]:
    """The jars of the installed jpmml_evaluator package that Flink's JVM lacks."""
    spec = importlib.util.find_spec("jpmml_evaluator")
    if spec is None or not spec.submodule_search_locations:
        return []
    package = Path(next(iter(spec.submodule_search_locations)))
    found = sorted((package / "resources").glob("*.jar")) + sorted((package / "dependencies").glob("*.jar"))
    return [jar for jar in found if not jar.name.startswith(_NOT_ON_FLINK)]


def with_jpmml_classpath(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the JPMML jars added to ``HADOOP_CLASSPATH``, which Flink's launch scripts and
    PyFlink's gateway put on the class path of the JVMs they start."""
    paths = [environ.get("HADOOP_CLASSPATH", ""), *(str(jar) for jar in jars())]
    return {**environ, "HADOOP_CLASSPATH": os.pathsep.join(p for p in paths if p)}


def in_flink_jvm() -> bool:
    """True when this Python runs inside a JVM through pemja (PyFlink's thread mode)."""
    try:
        import pemja
    except ImportError:
        return False
    return hasattr(pemja, "findClass")  # pemja's module only has it when embedded


class JvmUnavailableError(RuntimeError):
    """JPMML's classes cannot be used from here."""


# one backend per task thread: in thread mode every slot's task runs its own thread in the same
# interpreter, and pemja calls Java only from the thread that made the backend
_bound = threading.local()


def bind() -> None:
    """Resolve JPMML's classes in the JVM this Python runs in, for this thread; call from a Flink
    function's ``open``."""
    if getattr(_bound, "backend", None) is not None:
        return
    from pemja import findClass

    try:
        # a new string for each name: pemja's findClass rewrites the one it is given in place
        classes = {name: findClass(name.replace(".", "/")) for name in CLASSES}
    except Exception as e:
        raise JvmUnavailableError(
            f"JPMML's classes are not on this JVM's class path ({e}): "
            "start the job or the cluster in thread mode with modelstream's commands"
        ) from e
    _bound.backend = _pemja_backend(classes)


def _pemja_backend(classes: dict[str, Any]) -> Any:
    from jpmml_evaluator import JavaBackend

    class PemjaBackend(JavaBackend):  # type: ignore[misc]
        """jpmml_evaluator's calls into Java (its method names), through pemja, on the binding thread."""

        def __init__(self) -> None:
            super().__init__()
            self._thread = threading.get_ident()

        def _loadJavaClass(self, className: str) -> Any:
            return classes[className]

        def _on_bound_thread(self) -> None:
            if threading.get_ident() != self._thread:
                raise JvmUnavailableError("JPMML in thread mode runs on the task's own thread only")

        def newObject(self, className: str, *args: Any) -> Any:
            self._on_bound_thread()
            return self._ensureJavaClass(className)(*args)

        def newArray(self, className: str, values: Any) -> tuple[Any, ...]:
            return tuple(values)  # pemja passes a tuple as a Java array

        def staticInvoke(self, className: str, methodName: str, *args: Any) -> Any:
            self._on_bound_thread()
            # pemja matches no parameter to None; an empty array stands for "no columns to drop"
            method = getattr(self._ensureJavaClass(className), methodName)
            return method(*(() if a is None else a for a in args))

        def toJavaError(self, e: Exception) -> Exception:
            return e

    return PemjaBackend()


def backend() -> Any:
    """The backend ``bind`` made on this thread; raises JvmUnavailableError when it was not called."""
    found = getattr(_bound, "backend", None)
    if found is None:
        raise JvmUnavailableError(
            "JPMML inside Flink's JVM needs its classes bound when the function opens (model.jpmml_jvm.bind)"
        )
    return found
