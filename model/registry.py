"""Which module builds which ModelDescriptor.ModelType; formats are imported on first use."""

from __future__ import annotations

import importlib

from model.base import Model, ModelLoadError, ModelOptions
from modelstream.records import RecordSchema
from protobufs.modelstream_pb2 import ModelDescriptor

_FORMATS: dict[int, tuple[str, str]] = {
    ModelDescriptor.ONNX: ("model.onnx_model", "OnnxModel"),
    ModelDescriptor.PMML: ("model.pmml_model", "PmmlModel"),
}


class UnknownModelType(ModelLoadError):
    """The descriptor names a model type this build does not serve."""


def supported_types() -> list[str]:
    return [ModelDescriptor.ModelType.Name(t) for t in _FORMATS]


def model_class(model_type: int) -> type[Model]:
    """The Model implementation for a descriptor's model type."""
    try:
        module_name, class_name = _FORMATS[model_type]
    except KeyError:
        name = (
            ModelDescriptor.ModelType.Name(model_type)
            if model_type in ModelDescriptor.ModelType.values()
            else str(model_type)
        )
        raise UnknownModelType(
            f"model type {name} is not served (supported: {', '.join(supported_types())})"
        ) from None
    cls: type[Model] = getattr(importlib.import_module(module_name), class_name)
    return cls


def load_model(descriptor: ModelDescriptor, schema: RecordSchema, options: ModelOptions) -> Model:
    """Build the model a descriptor carries."""
    cls = model_class(descriptor.modeltype)
    if descriptor.WhichOneof("MessageContent") != "data":
        raise ModelLoadError(f"{cls.format_name} models must carry their bytes in `data`")
    if not descriptor.data:
        raise ModelLoadError("the descriptor carries no model bytes")
    return cls.load(descriptor.data, schema, options)
