"""TensorFlow set-up shared by the graph and SavedModel formats (imported only when one is served)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banners are not errors

import numpy as np
import tensorflow as tf

from modelstream.contract import InputSpec

_configured = False


def configure_threads(threads: int) -> None:
    """Limit TF's thread pools once per process (it refuses after its runtime has started)."""
    global _configured
    if _configured:
        return
    _configured = True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialized by someone else in this process; keep its settings


def input_spec(name: str, dtype: tf.DType, shape: tf.TensorShape) -> InputSpec:
    """A TF input as the core binds it: numpy dtype (strings as object), shape without the batch. An input
    of unknown rank (a placeholder declared without a shape) is taken as [n, k], a vector per record."""
    numpy_dtype = np.dtype(object) if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)
    dims = [None] if shape.rank is None else shape.as_list()[1:]
    return InputSpec(name, numpy_dtype, tuple(dims))


__all__ = ["configure_threads", "input_spec", "tf"]
