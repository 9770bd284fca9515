"""TensorFlow SavedModels, carried as a zip or tar.gz of the SavedModel directory (a ``location`` is
packed into one when the model is built, so Flink state always holds the bytes).

The signature is the descriptor's ``signature``, else ``serving_default``, else the only one; its inputs
(all of them, or the one the descriptor names) are bound to record fields by name with their dtypes; its
output is the only one or the one the descriptor names, read as in the graph format.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from model.tensorflow_common import configure_threads, input_spec, tf
from modelstream.archive import find_saved_model, unpack
from modelstream.contract import (
    InputArrays,
    InputSpec,
    Model,
    ModelLoadError,
    ModelOptions,
    ModelSource,
    ScoreBatch,
    scores_from_tensor,
)

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
        inputs: tuple[InputSpec, ...],
        output_name: str,
    ) -> None:
        self._payload = payload
        self._directory = directory
        self._loaded = loaded  # keeps the function's variables alive
        self._function = function
        self.inputs = inputs
        self._output_name = output_name

    @classmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> TensorflowSavedModel:
        configure_threads(options.tf_threads)
        directory = Path(tempfile.mkdtemp(prefix="modelstream-savedmodel-"))
        try:
            unpack(source.payload, directory, options.max_unpacked_bytes, options.max_archive_entries)
            try:
                loaded = tf.saved_model.load(str(find_saved_model(directory)))
            except (ValueError, OSError, tf.errors.OpError) as e:
                raise ModelLoadError(
                    "TensorFlow cannot load the SavedModel: "
                    + str(e).splitlines()[0].replace(str(directory), "<archive>")
                ) from e
            signatures = dict(loaded.signatures)
            name = source.signature or (DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures else "")
            function = signatures[_pick("signature", sorted(signatures), name, "the descriptor's signature")]
            input_specs = function.structured_input_signature[1]
            names = sorted(input_specs)
            if source.input_name:
                names = [_pick("input", names, source.input_name, "the descriptor's input_name")]
            inputs = tuple(input_spec(n, input_specs[n].dtype, input_specs[n].shape) for n in names)
            outputs = sorted(function.structured_outputs)
            output_name = _pick("output", outputs, source.output_name, "the descriptor's output_name")
            return cls(source.payload, directory, loaded, function, inputs, output_name)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        result = self._function(**{spec.name: tf.constant(inputs[spec.name]) for spec in self.inputs})
        return scores_from_tensor(result[self._output_name].numpy())

    def to_bytes(self) -> bytes:
        return self._payload

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)
