"""TensorFlow SavedModels, carried as a zip or tar.gz of the SavedModel directory (a ``location`` is
packed into one when the model is built, so Flink state always holds the bytes).

The signature is the descriptor's ``signature``, else ``serving_default``, else the only one; its input
and output are the only ones or those the descriptor names. The input takes [n, features] in schema
order; outputs are read as in the graph format.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from model.archive import find_saved_model, unpack
from model.base import Model, ModelLoadError, ModelOptions, ModelSource, ScoreBatch, scores_from_tensor
from model.tensorflow_common import configure_threads, tf
from modelstream.records import FeatureMatrix, RecordSchema

DEFAULT_SIGNATURE = "serving_default"


def _pick(kind: str, available: list[str], wanted: str, hint: str) -> str:
    if wanted:
        if wanted not in available:
            raise ModelLoadError(
                f"{kind} {wanted!r} not in the SavedModel (it has {', '.join(available) or 'none'})"
            )
        return wanted
    if len(available) == 1:
        return available[0]
    raise ModelLoadError(
        f"cannot choose the {kind} among {', '.join(available) or 'none'}; name it in {hint}"
    )


class TensorflowSavedModel(Model):
    format_name = "TENSORFLOWSAVED"

    def __init__(
        self,
        payload: bytes,
        directory: Path,
        loaded: Any,
        function: Any,
        input_name: str,
        input_dtype: Any,
        output_name: str,
    ) -> None:
        self._payload = payload
        self._directory = directory
        self._loaded = loaded  # keeps the function's variables alive
        self._function = function
        self._input_name = input_name
        self._input_dtype = input_dtype
        self._output_name = output_name

    @classmethod
    def load(cls, source: ModelSource, schema: RecordSchema, options: ModelOptions) -> TensorflowSavedModel:
        configure_threads(options.tf_threads)
        directory = Path(tempfile.mkdtemp(prefix="modelstream-savedmodel-"))
        try:
            unpack(source.payload, directory)
            try:
                loaded = tf.saved_model.load(str(find_saved_model(directory)))
            except (ValueError, OSError, tf.errors.OpError) as e:
                raise ModelLoadError(
                    f"TensorFlow cannot load the SavedModel: {str(e).splitlines()[0]}"
                ) from e
            signatures = dict(loaded.signatures)
            name = source.signature or (DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures else "")
            function = signatures[_pick("signature", sorted(signatures), name, "the descriptor's signature")]
            input_specs = function.structured_input_signature[1]
            input_name = _pick("input", sorted(input_specs), source.input_name, "the descriptor's input_name")
            outputs = sorted(function.structured_outputs)
            output_name = _pick("output", outputs, source.output_name, "the descriptor's output_name")
            spec = input_specs[input_name]
            width = spec.shape[-1] if spec.shape.rank else None
            if width is not None and width != len(schema.features):
                raise ModelLoadError(
                    f"input {input_name!r} takes {width} features, records have {len(schema.features)}"
                )
            return cls(source.payload, directory, loaded, function, input_name, spec.dtype, output_name)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        result = self._function(**{self._input_name: tf.constant(features, dtype=self._input_dtype)})
        return scores_from_tensor(result[self._output_name].numpy())

    def to_bytes(self) -> bytes:
        return self._payload

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)
