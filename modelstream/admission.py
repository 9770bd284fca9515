"""What a published model must pass before it serves: it builds, its inputs bind to its data type's
records, and it scores a probe record finitely.

The job admits every model through ``admit``; ``publish-model`` runs the same checks before it
publishes, so a model the job would dead-letter is refused with the same reason.
"""

from __future__ import annotations

from modelstream.binding import Binder, synthesized_inputs
from modelstream.codecs import SourceRecord, decode_groups
from modelstream.codecs.protobuf import UserSchemas
from modelstream.contract import InputArrays, Model, ModelLoadError, ModelOptions, ScoreBatch, UnsafeModel
from modelstream.deadletters import Reason
from modelstream.records import WINE
from modelstream.registry import UnknownModelType, load_model
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor

WINE_PROBE = decode_groups(
    [SourceRecord(WINE.probe_record().SerializeToString(), None, None, Encoding.WINE, "", 0, None, "")],
    UserSchemas(),
)[0]


class ModelRejected(Exception):
    """A model that may not serve: the dead-letter reason and what is wrong."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def admit(
    descriptor: ModelDescriptor,
    options: ModelOptions,
    data_type: str,
    probe: SourceRecord | None,
    schemas: UserSchemas,
) -> tuple[Model, Binder]:
    """The built model and its input binding, or ModelRejected.

    The probe is the data type's most recent good record; without one, a record made up from its
    schema (when one is published), the tutorial's wine record (when the model binds to it), else
    from the model's declared inputs."""
    try:
        model = load_model(descriptor, options)
    except UnknownModelType as e:
        raise ModelRejected(Reason.UNKNOWN_MODEL_TYPE, str(e)) from e
    except UnsafeModel as e:  # a hostile file, refused before anything was built from it
        raise ModelRejected(Reason.MODEL_UNSAFE, str(e)) from e
    except ModelLoadError as e:
        raise ModelRejected(Reason.MODEL_BUILD_FAILED, str(e)) from e
    binder = Binder(model.inputs, tuple(descriptor.input_fields))
    try:
        _validate(data_type, model, binder, probe, schemas)
    except ModelRejected:
        model.close()
        raise
    return model, binder


def default_probe(binder: Binder, schemas: UserSchemas) -> SourceRecord | None:
    """A data type's probe before any of its records scored: one made up from its schema, else the
    tutorial's wine record when the model binds to it, else None (made up from the model's inputs)."""
    if schemas.names():
        return SourceRecord(b"", None, None, Encoding.PROTOBUF, "", 0, None, schemas.names()[-1])
    if binder.bind(WINE_PROBE).rows.size:
        return WINE_PROBE.sources[0]
    return None


def probe_scores(
    data_type: str, model: Model, binder: Binder, probe: SourceRecord | None, schemas: UserSchemas
) -> ScoreBatch:
    """The model's scores of the probe (or of inputs made up from its declared ones); ModelRejected
    when its inputs cannot be bound or it fails or returns no finite score."""
    arrays: InputArrays
    if probe is None:
        arrays = synthesized_inputs(model.inputs)
    else:
        decoded = decode_groups([probe], schemas)[0]
        if decoded.failures:
            arrays = synthesized_inputs(model.inputs)  # e.g. its schema was replaced since
        else:
            bound = binder.bind(decoded)
            if bound.failures:
                inputs = ", ".join(spec.describe() for spec in model.inputs)
                why = bound.failures[0].message
                message = f"inputs ({inputs}) cannot be bound from {data_type} records: {why}"
                raise ModelRejected(Reason.MODEL_INPUTS_UNBOUND, message)
            arrays = bound.arrays
    try:
        batch = model.score_batch(arrays)
        batch.check(1)
    except Exception as e:
        raise ModelRejected(Reason.MODEL_VALIDATION_FAILED, f"probe record: {e}") from e
    return batch


def _validate(
    data_type: str, model: Model, binder: Binder, probe: SourceRecord | None, schemas: UserSchemas
) -> None:
    probe_scores(data_type, model, binder, probe or default_probe(binder, schemas), schemas)
