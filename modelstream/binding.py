"""Binding records to a model's inputs, by name.

Each input a model declares (``InputSpec``) takes the record field of the same name (or, failing that,
the same name compared loosely: "fixed acidity" is ``fixed_acidity``), cast to the input's element type
and shaped [n] or [n, 1] for a scalar, [n, k] for an array of k numbers. An input no field is named after
takes, in this order: the descriptor's ordered ``input_fields`` stacked into [n, k]; the fixed feature
order of a record type that has one (WineRecord's 11 features); PMML's missing value if the input is
optional. A row that cannot feed an input (the field is missing, null, of the wrong type or shape, or a
non-finite number) fails alone, naming the field and what was expected; extra fields are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelstream.codecs.base import MISSING, Column, Decoded, Failure, Fields
from modelstream.contract import InputSpec
from modelstream.deadletters import Reason
from modelstream.records import normalize_field_name

Array = npt.NDArray[np.generic]
# per failing row: what is wrong
RowErrors = dict[int, str]

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_PLAIN_NUMBERS = {int, float}


class Unbound(ValueError):
    """Inputs that no field of a data type's records can feed."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "a bool"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, _NUMBER_TYPES):
        return "a number"
    if isinstance(value, list | tuple | np.ndarray):
        return "an array"
    return f"a {type(value).__name__}"


def _is_number(value: object) -> bool:
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool | np.bool_)


def _fits(have: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(have) == len(want) and all(w is None or w == h for h, w in zip(have, want, strict=True))


def _shape_text(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("n" if d is None else str(d) for d in (None, *shape)) + "]"


def _expected(spec: InputSpec) -> str:
    if not spec.shape or spec.shape == (1,):
        return spec.type_name
    return f"an array of {spec.type_name} {_shape_text(spec.shape)[4:-1] or ''}".rstrip()


def _all_rows(n: int, message: str) -> RowErrors:
    return dict.fromkeys(range(n), message)


def _from_array(name: str, column: Array, spec: InputSpec) -> tuple[Array | None, RowErrors]:
    n = len(column)
    if spec.is_string != (column.dtype == np.dtype(object)) or (column.dtype.kind == "b") != (spec.dtype.kind == "b"):
        have = "text" if column.dtype == np.dtype(object) else str(column.dtype)
        return None, _all_rows(n, f"field {name} is {have}, expected {spec.type_name}")
    have = column.shape[1:]
    if not _fits(have, spec.shape):
        if have == () and spec.shape == (1,):
            column = column.reshape(n, 1)
        elif have == (1,) and spec.shape == ():
            column = column.reshape(n)
        else:
            message = f"field {name} has shape {_shape_text(have)}, expected {_shape_text(spec.shape)}"
            return None, _all_rows(n, message)
    return column.astype(spec.dtype, copy=False), {}


def _scalar_list(name: str, values: list[object], spec: InputSpec) -> tuple[Array, RowErrors]:
    types = set(map(type, values))
    if spec.is_string:
        if types <= {str}:
            return np.array(values, dtype=object), {}
    elif spec.dtype.kind == "b":
        if types <= {bool}:
            return np.array(values, dtype=np.bool_), {}
    elif types <= _PLAIN_NUMBERS and (spec.dtype.kind == "f" or types == {int}):
        return np.array(values, dtype=spec.dtype), {}
    errors: RowErrors = {}
    clean: list[object] = []
    fill: object = None if spec.is_string else (False if spec.dtype.kind == "b" else 0)
    for row, value in enumerate(values):
        if value is MISSING or value is None:
            if spec.optional:
                clean.append(None if spec.is_string else math.nan)
                continue
            errors[row] = f"missing field {name}" if value is MISSING else f"field {name} is null, expected {spec.type_name}"
        elif spec.is_string:
            if isinstance(value, str):
                clean.append(value)
                continue
            if spec.optional and _is_number(value):  # a PMML categorical field given as a number
                clean.append(str(value))
                continue
            errors[row] = f"field {name} is {_kind(value)}, expected string"
        elif spec.dtype.kind == "b":
            if isinstance(value, bool | np.bool_):
                clean.append(bool(value))
                continue
            errors[row] = f"field {name} is {_kind(value)}, expected bool"
        elif _is_number(value) and (spec.dtype.kind == "f" or float(value).is_integer()):  # type: ignore[arg-type]
            clean.append(value)
            continue
        else:
            errors[row] = f"field {name} is {_kind(value)}, expected {spec.type_name}"
        clean.append(fill)
    dtype = np.float64 if spec.optional and not spec.is_string else spec.dtype
    return np.array(clean, dtype=dtype).astype(spec.dtype, copy=False), errors


def _array_list(name: str, values: list[object], spec: InputSpec) -> tuple[Array, RowErrors]:
    width = tuple(1 if d is None else d for d in spec.shape)
    try:
        if set(map(type, values)) <= {list, np.ndarray}:
            array = np.array(values, dtype=spec.dtype)
            if _fits(array.shape[1:], spec.shape):
                return array, {}
    except (ValueError, TypeError):
        pass
    errors: RowErrors = {}
    rows: list[object] = []
    for row, value in enumerate(values):
        try:
            item = np.asarray(value if isinstance(value, list | np.ndarray) else None, dtype=spec.dtype)
        except (ValueError, TypeError):
            item = None
        if value is MISSING:
            errors[row] = f"missing field {name}"
        elif item is None or item.ndim == 0 or any(isinstance(v, str | bool) for v in np.ravel(np.asarray(value, dtype=object))):
            errors[row] = f"field {name} is {_kind(value)}, expected {_expected(spec)}"
        elif not _fits(item.shape, spec.shape):
            errors[row] = f"field {name} has shape {_shape_text(item.shape)}, expected {_shape_text(spec.shape)}"
        else:
            rows.append(item)
            continue
        rows.append(np.zeros(width, dtype=spec.dtype))
    return np.stack(rows).astype(spec.dtype, copy=False), errors  # type: ignore[arg-type]


def column_array(name: str, column: Column, spec: InputSpec) -> tuple[Array | None, RowErrors]:
    """A field's values as the input's array, and the rows that cannot feed it."""
    if isinstance(column, np.ndarray):
        array, errors = _from_array(name, column, spec)
    elif len(spec.shape) == 0 or spec.shape == (1,):
        array, errors = _scalar_list(name, column, spec)
        if spec.shape == (1,):
            array = array.reshape(-1, 1)
    else:
        array, errors = _array_list(name, column, spec)
    if array is not None and array.dtype.kind == "f":
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if spec.optional and array.ndim == 1:  # NaN is PMML's missing value: only infinities are wrong
            finite = ~np.isinf(array)
        if not finite.all():
            for row in np.flatnonzero(~finite).tolist():
                errors.setdefault(row, f"field {name} is not a finite number")
    return array, errors


class _Names:
    """A batch's field names, matched exactly first, then loosely."""

    def __init__(self, fields: Fields) -> None:
        self._fields = fields
        self._loose: dict[str, str] | None = None

    def column(self, name: str) -> tuple[str, Column] | None:
        column = self._fields.column(name)
        if column is not None:
            return name, column
        if self._loose is None:
            self._loose = {normalize_field_name(n): n for n in self._fields.names()}
        found = self._loose.get(normalize_field_name(name))
        if found is None:
            return None
        column = self._fields.column(found)
        return None if column is None else (found, column)

    def available(self) -> str:
        names = sorted(self._fields.names())
        return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"


@dataclass(frozen=True)
class Bound:
    """A batch bound to a model: the input arrays of the rows that bound, those rows' positions, and a
    failure for each row that did not."""

    arrays: dict[str, Array]
    rows: npt.NDArray[np.intp]
    failures: list[Failure]


@dataclass(frozen=True)
class Binder:
    """Binds decoded batches to one model's inputs (built once per model)."""

    inputs: tuple[InputSpec, ...]
    input_fields: tuple[str, ...] = ()

    def bind(self, decoded: Decoded) -> Bound:
        n = len(decoded)
        names = _Names(decoded.fields)
        arrays: dict[str, Array] = {}
        errors: RowErrors = {}
        fields_used = False
        for spec in self.inputs:
            found = names.column(spec.name)
            if found is not None:
                array, wrong = column_array(found[0], found[1], spec)
            elif self.input_fields and not fields_used:
                fields_used = True
                array, wrong = self._stack(names, spec, n)
            else:
                array, wrong = self._unnamed(decoded.fields, names, spec, n)
            for row, message in wrong.items():
                errors.setdefault(row, message)
            if array is not None:
                arrays[spec.name] = array
        if not errors:
            return Bound(arrays, np.arange(n), [])
        keep = np.asarray([row for row in range(n) if row not in errors], dtype=np.intp)
        failures = [Failure(decoded.sources[row], Reason.RECORD_INVALID, message) for row, message in sorted(errors.items())]
        kept = {name: array[keep] for name, array in arrays.items()} if len(keep) else {}
        return Bound(kept, keep, failures)

    def _stack(self, names: _Names, spec: InputSpec, n: int) -> tuple[Array | None, RowErrors]:
        width = spec.shape[-1] if spec.shape else None
        if len(spec.shape) != 1 or width not in (None, len(self.input_fields)):
            message = f"input {spec.describe()} cannot take the {len(self.input_fields)} input_fields"
            return None, _all_rows(n, message)
        scalar = InputSpec(spec.name, spec.dtype, (), spec.optional)
        columns: list[Array] = []
        errors: RowErrors = {}
        for field in self.input_fields:
            found = names.column(field)
            if found is None:
                return None, _all_rows(n, f"missing field {field} (records have: {names.available()})")
            array, wrong = column_array(found[0], found[1], scalar)
            for row, message in wrong.items():
                errors.setdefault(row, message)
            columns.append(array)  # type: ignore[arg-type]
        return np.column_stack(columns).astype(spec.dtype, copy=False), errors

    @staticmethod
    def _unnamed(fields: Fields, names: _Names, spec: InputSpec, n: int) -> tuple[Array | None, RowErrors]:
        matrix = fields.default_matrix()
        if matrix is not None and len(spec.shape) == 1 and spec.shape[0] in (None, matrix.shape[1]):
            return column_array(spec.name, matrix, spec)
        if spec.optional:
            missing: list[object] = [MISSING] * n
            return column_array(spec.name, missing, spec)
        return None, _all_rows(n, f"missing field {spec.name} (records have: {names.available()})")


def synthesized_inputs(inputs: Sequence[InputSpec]) -> dict[str, Array]:
    """One record made up from a model's declared inputs (zeros, empty strings): the probe a model is
    validated on before its data type has seen a record."""
    arrays: dict[str, Array] = {}
    for spec in inputs:
        shape = (1, *(1 if d is None else d for d in spec.shape))
        arrays[spec.name] = np.full(shape, "", dtype=object) if spec.is_string else np.zeros(shape, dtype=spec.dtype)
    return arrays
