"""Which module builds which ModelDescriptor.ModelType; formats are imported by module path on first use,
so the core never imports a runtime."""

from __future__ import annotations

import importlib

from modelstream.archive import read_location
from modelstream.contract import Model, ModelLoadError, ModelOptions, ModelSource
from modelstream.screening import check_size
from protobufs.modelstream_pb2 import ModelDescriptor

_FORMATS: dict[int, tuple[str, str]] = {
    ModelDescriptor.TENSORFLOW: ("model.tensorflow_graph", "TensorflowGraphModel"),
    ModelDescriptor.TENSORFLOWSAVED: ("model.tensorflow_saved", "TensorflowSavedModel"),
    ModelDescriptor.PMML: ("model.pmml_model", "PmmlModel"),
    ModelDescriptor.ONNX: ("model.onnx_model", "OnnxModel"),
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
        known = model_type in ModelDescriptor.ModelType.values()
        name = ModelDescriptor.ModelType.Name(model_type) if known else str(model_type)
        supported = ", ".join(supported_types())
        raise UnknownModelType(f"model type {name} is not served (supported: {supported})") from None
    cls: type[Model] = getattr(importlib.import_module(module_name), class_name)
    return cls


def model_source(descriptor: ModelDescriptor, options: ModelOptions) -> ModelSource:
    """The model's bytes (read from its location if it has one) and the descriptor's naming hints;
    UnsafeModel above the size limit."""
    if descriptor.WhichOneof("MessageContent") == "location":
        payload = read_location(descriptor.location, options.allowed_roots, options.max_model_bytes)
    else:
        payload = descriptor.data
        check_size("the model's data is", len(payload), options.max_model_bytes)
    if not payload:
        raise ModelLoadError("the descriptor carries no model bytes and no location")
    return ModelSource(payload, descriptor.input_name, descriptor.output_name, descriptor.signature)


def load_model(descriptor: ModelDescriptor, options: ModelOptions) -> Model:
    """Build the model a descriptor carries or points to."""
    cls = model_class(descriptor.modeltype)
    return cls.load(model_source(descriptor, options), options)


def self_contained(descriptor: ModelDescriptor, model: Model, version: str) -> bytes:
    """The descriptor as Flink state keeps it: the model's bytes inline (never a location, which another
    TaskManager may not see) and its version fixed."""
    stored = ModelDescriptor()
    stored.CopyFrom(descriptor)
    stored.data = model.to_bytes()
    stored.version = version
    return stored.SerializeToString()
