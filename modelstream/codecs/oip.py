"""Open Inference Protocol (KServe V2) ``inference.ModelInferRequest`` records, as Seldon Core 2 carries
them over Kafka: named input tensors in typed ``contents`` or in ``raw_input_contents`` (little-endian;
BYTES elements as a 4-byte little-endian length and the bytes). A request's first dimension is its batch:
a request of n rows is n rows, with ids ``id`` (one row) or ``id[i]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from modelstream.codecs.base import (
    MISSING,
    Column,
    Decoded,
    Failure,
    SchemaLookup,
    SourceRecord,
    record_id,
    undecodable,
)
from modelstream.deadletters import Reason
from modelstream.topics import Encoding
from protobufs.open_inference_pb2 import ModelInferRequest

# datatype -> (numpy dtype of its raw bytes, the typed contents field)
DATATYPES: dict[str, tuple[np.dtype[np.generic], str]] = {
    "BOOL": (np.dtype("?"), "bool_contents"),
    "INT8": (np.dtype("<i1"), "int_contents"),
    "INT16": (np.dtype("<i2"), "int_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "UINT8": (np.dtype("<u1"), "uint_contents"),
    "UINT16": (np.dtype("<u2"), "uint_contents"),
    "UINT32": (np.dtype("<u4"), "uint_contents"),
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
    "FP16": (np.dtype("<f2"), ""),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
    "FP64": (np.dtype("<f8"), "fp64_contents"),
    "BYTES": (np.dtype(object), "bytes_contents"),
}


class TensorError(ValueError):
    """A request tensor that cannot be read, with what is wrong."""


def _raw_bytes_elements(raw: bytes) -> list[bytes]:
    elements, position = [], 0
    while position < len(raw):
        if position + 4 > len(raw):
            raise TensorError("a BYTES element's length is cut short")
        length = int.from_bytes(raw[position : position + 4], "little")
        position += 4
        if position + length > len(raw):
            raise TensorError("a BYTES element is cut short")
        elements.append(raw[position : position + length])
        position += length
    return elements


def read_tensor(tensor: ModelInferRequest.InferInputTensor, raw: bytes | None) -> npt.NDArray[np.generic]:
    """One input tensor as an array of its shape; BYTES elements as text."""
    if tensor.datatype not in DATATYPES:
        raise TensorError(
            f"tensor {tensor.name!r} has datatype {tensor.datatype!r} (one of {', '.join(DATATYPES)})"
        )
    dtype, contents_field = DATATYPES[tensor.datatype]
    shape = tuple(tensor.shape)
    if not shape or any(d < 0 for d in shape):
        raise TensorError(f"tensor {tensor.name!r} has shape {list(shape)}: the first dimension is the batch")
    if dtype == np.dtype(object):
        elements = _raw_bytes_elements(raw) if raw is not None else list(tensor.contents.bytes_contents)
        array: npt.NDArray[np.generic] = np.array(
            [e.decode("utf-8", "replace") for e in elements], dtype=object
        )
    elif raw is not None:
        if len(raw) % dtype.itemsize:
            raise TensorError(
                f"tensor {tensor.name!r}: {len(raw)} raw bytes are not whole {tensor.datatype} elements"
            )
        array = np.frombuffer(raw, dtype=dtype)
    elif contents_field:
        array = np.asarray(getattr(tensor.contents, contents_field), dtype=dtype)
    else:
        raise TensorError(f"tensor {tensor.name!r}: {tensor.datatype} travels only in raw_input_contents")
    if array.size != math.prod(shape):
        raise TensorError(
            f"tensor {tensor.name!r} has {array.size} elements, "
            f"its shape {list(shape)} needs {math.prod(shape)}"
        )
    return array.reshape(shape)


class TensorFields:
    """Fields of a batch of requests: each input tensor, the requests' rows concatenated."""

    def __init__(self, parts: list[dict[str, npt.NDArray[np.generic]]], rows: list[int]) -> None:
        self._parts = parts  # per request: input name -> array [rows, ...]
        self._rows = rows  # rows per request

    def names(self) -> Iterable[str]:
        names: set[str] = set()
        for part in self._parts:
            names.update(part)
        return names

    def column(self, name: str) -> Column | None:
        arrays = [part.get(name) for part in self._parts]
        present = [a for a in arrays if a is not None]
        if not present:
            return None
        if len(present) == len(arrays) and len({(a.shape[1:], a.dtype) for a in present}) == 1:
            return present[0] if len(present) == 1 else np.concatenate(present)
        values: list[object] = []
        for array, rows in zip(arrays, self._rows, strict=True):
            values.extend([MISSING] * rows if array is None else list(array))
        return values

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        return None

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return None


# what a batch of requests must share to be read together: each input's name, datatype and shape, and
# whether the request carries raw_input_contents
Layout = tuple[tuple[tuple[str, str, tuple[int, ...]], ...], bool]


def _layout(request: ModelInferRequest) -> Layout:
    inputs = request.inputs
    if len(inputs) == 1:  # the common case, without a generator's cost
        t = inputs[0]
        return ((t.name, t.datatype, tuple(t.shape)),), bool(request.raw_input_contents)
    return tuple([(t.name, t.datatype, tuple(t.shape)) for t in inputs]), bool(request.raw_input_contents)


def _together(layout: Layout, requests: list[ModelInferRequest]) -> dict[str, npt.NDArray[np.generic]] | None:
    """The inputs of requests that share a layout, each as one array of all their rows; None when the
    layout or an element count is off (then each request is read alone, to say which and why)."""
    inputs, raw = layout
    if not inputs or len({shape[0] if shape else -1 for _, _, shape in inputs}) != 1:
        return None
    count = len(requests)
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for i, (name, datatype, shape) in enumerate(inputs):
        found = DATATYPES.get(datatype)
        if found is None or found[0] == np.dtype(object) or not shape or min(shape) < 1:
            return None
        dtype, contents_field = found
        size = math.prod(shape)
        if raw:
            if any(len(r.raw_input_contents) != len(inputs) for r in requests):
                return None
            data = b"".join([r.raw_input_contents[i] for r in requests])
            if len(data) != size * count * dtype.itemsize:
                return None
            array = np.frombuffer(data, dtype=dtype)
        else:
            if not contents_field:
                return None
            values = [getattr(r.inputs[i].contents, contents_field) for r in requests]
            if any(len(v) != size for v in values):
                return None
            array = np.fromiter(itertools.chain.from_iterable(values), dtype=dtype, count=size * count)
        arrays[name] = array.reshape(count * shape[0], *shape[1:])
    return arrays


class OipCodec:
    encoding = Encoding.OIP

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded:
        errors: list[tuple[int, str]] = []
        by_layout: dict[Layout, list[tuple[SourceRecord, ModelInferRequest]]] = {}
        parse = ModelInferRequest.FromString
        for i, record in enumerate(records):
            try:
                request = parse(record.value)
            except DecodeError as e:
                errors.append((i, str(e)))
                continue
            by_layout.setdefault(_layout(request), []).append((record, request))
        decoded = _Rows()
        for layout, group in by_layout.items():
            arrays = _together(layout, [request for _, request in group])
            if arrays is None:
                for record, request in group:
                    decoded.add_alone(record, request)
            else:
                decoded.add(arrays, layout[0][0][2][0], group)
        decoded.failures += undecodable(records, errors, "an inference.ModelInferRequest")
        return decoded.result()


class _Rows:
    """Rows of decoded requests, collected group by group."""

    def __init__(self) -> None:
        self.sources: list[SourceRecord] = []
        self.ids: list[str] = []
        self.timestamps: list[int] = []
        self.parts: list[dict[str, npt.NDArray[np.generic]]] = []
        self.rows: list[int] = []
        self.failures: list[Failure] = []

    def add(
        self,
        arrays: dict[str, npt.NDArray[np.generic]],
        per_request: int,
        requests: Sequence[tuple[SourceRecord, ModelInferRequest]],
    ) -> None:
        self.parts.append(arrays)
        self.rows.append(per_request * len(requests))
        if per_request == 1:
            self.sources += [record for record, _ in requests]
            self.ids += [request.id or record_id("", record) for record, request in requests]
            self.timestamps += [record.timestamp for record, _ in requests]
            return
        for record, request in requests:
            own = record_id(request.id, record)
            self.sources += [record] * per_request
            self.ids += [f"{own}[{row}]" for row in range(per_request)]
            self.timestamps += [record.timestamp] * per_request

    def add_alone(self, record: SourceRecord, request: ModelInferRequest) -> None:
        try:
            tensors = _tensors(request)
        except TensorError as e:
            self.failures.append(Failure(record, Reason.RECORD_INVALID, str(e)))
            return
        self.add(tensors, len(next(iter(tensors.values()))), [(record, request)])

    def result(self) -> Decoded:
        return Decoded(
            self.sources, self.ids, self.timestamps, TensorFields(self.parts, self.rows), self.failures
        )


def _tensors(request: ModelInferRequest) -> dict[str, npt.NDArray[np.generic]]:
    if not request.inputs:
        raise TensorError("the request has no input tensors")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise TensorError(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    tensors = {t.name: read_tensor(t, raw[i] if raw else None) for i, t in enumerate(request.inputs)}
    batch = {name: len(array) for name, array in tensors.items()}
    if len(set(batch.values())) != 1:
        raise TensorError(f"the inputs disagree on the batch size (first dimension): {batch}")
    if not next(iter(batch.values())):
        raise TensorError("the request has 0 rows")
    return tensors
