"""Binding records to a model's inputs, by name.

Each input a model declares (``InputSpec``) takes the record field of the same name (or, failing that,
the same name compared loosely: "fixed acidity" is ``fixed_acidity``), cast to the input's element type
and shaped [n] or [n, 1] for a scalar, [n, k] for an array of k numbers. An input no field is named after
takes, in this order: the descriptor's ordered ``input_fields`` stacked into [n, k]; for a model's
only input, the fixed feature order of a record type that has one (WineRecord's 11 features); PMML's
missing value if the input is optional. A row that cannot feed an input (the field is missing, null, of
the wrong type or shape, or a non-finite number) fails alone, naming the field and what was expected;
extra fields are ignored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    return f"an array of {spec.type_name} {_shape_text(spec.shape)}"


def _all_rows(n: int, message: str) -> RowErrors:
    return dict.fromkeys(range(n), message)


def _from_array(name: str, column: Array, spec: InputSpec) -> tuple[Array | None, RowErrors]:
    n = len(column)
    if spec.is_string != (column.dtype == np.dtype(object)) or (column.dtype.kind == "b") != (
        spec.dtype.kind == "b"
    ):
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
    return _cast(name, column, spec)


def _cast(name: str, array: Array, spec: InputSpec) -> tuple[Array, RowErrors]:
    """An array of the right kind and shape as the input's dtype; numbers feed an integer input only when
    they are whole and within its range (a cast would truncate or wrap them)."""
    if spec.dtype.kind in "iu" and array.dtype.kind in "iuf" and array.dtype != spec.dtype:
        return _integers(name, array, spec)
    return array.astype(spec.dtype, copy=False), {}


def _integers(name: str, array: Array, spec: InputSpec) -> tuple[Array, RowErrors]:
    info = np.iinfo(spec.dtype)  # type: ignore[type-var]
    flat: npt.NDArray[Any] = array.reshape(len(array), -1)
    if flat.dtype.kind == "f":
        ok = np.isfinite(flat) & (flat == np.trunc(flat)) & (flat >= info.min) & (flat < float(info.max) + 1)
    else:
        ok = (flat >= info.min) & (flat <= info.max)
    if ok.all():
        return array.astype(spec.dtype), {}
    message = f"field {name} is not a whole number {spec.type_name} can hold, expected {spec.type_name}"
    errors = dict.fromkeys(np.flatnonzero(~ok.all(axis=1)).tolist(), message)
    return np.where(ok, flat, 0).reshape(array.shape).astype(spec.dtype), errors


def _scalar_list(name: str, values: list[object], spec: InputSpec) -> tuple[Array, RowErrors]:
    types = set(map(type, values))
    if spec.is_string:
        if types <= {str}:
            return np.array(values, dtype=object), {}
    elif spec.dtype.kind == "b":
        if types <= {bool}:
            return np.array(values, dtype=np.bool_), {}
    elif types <= _PLAIN_NUMBERS and (spec.dtype.kind == "f" or types == {int}):
        try:
            return np.array(values, dtype=spec.dtype), {}
        except OverflowError:  # an integer the input's type cannot hold: found row by row below
            pass
    errors: RowErrors = {}
    clean: list[object] = []
    fill: object = None if spec.is_string else (False if spec.dtype.kind == "b" else 0)
    for row, value in enumerate(values):
        if value is MISSING or value is None:
            if spec.optional:
                clean.append(None if spec.is_string else math.nan)
                continue
            errors[row] = (
                f"missing field {name}"
                if value is MISSING
                else f"field {name} is null, expected {spec.type_name}"
            )
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
        elif _is_number(value) and (spec.dtype.kind == "f" or _holds(spec.dtype, value)):
            clean.append(value)
            continue
        else:
            errors[row] = f"field {name} is {_kind(value)}, expected {spec.type_name}"
        clean.append(fill)
    dtype = np.float64 if spec.optional and not spec.is_string else spec.dtype
    return np.array(clean, dtype=dtype).astype(spec.dtype, copy=False), errors


def _holds(dtype: np.dtype[np.generic], value: object) -> bool:
    """Whether an integer type holds a number exactly."""
    number = float(value)  # type: ignore[arg-type]
    info = np.iinfo(dtype)  # type: ignore[type-var]
    return number.is_integer() and info.min <= value <= info.max  # type: ignore[operator]


def _array_kind_fits(array: Array, spec: InputSpec) -> bool:
    """Whether an array's elements are of the kind the input takes (whole floats may feed integers)."""
    if spec.is_string:
        return array.dtype.kind in "UO"
    if spec.dtype.kind == "b":
        return array.dtype.kind == "b"
    return array.dtype.kind in "iuf"


def _array_list(name: str, values: list[object], spec: InputSpec) -> tuple[Array, RowErrors]:
    if set(map(type, values)) <= {list, np.ndarray}:
        try:
            array = np.array(values)
        except (ValueError, TypeError):  # ragged
            array = None
        if array is not None and _array_kind_fits(array, spec) and _fits(array.shape[1:], spec.shape):
            return _cast(name, array, spec)
    errors: RowErrors = {}
    good: dict[int, Array] = {}
    agreed: tuple[int, ...] | None = None  # a dimension of any size still has one size in a batch
    for row, value in enumerate(values):
        try:
            item = np.asarray(value) if isinstance(value, list | np.ndarray) else None
        except (ValueError, TypeError):
            item = None
        if value is MISSING:
            errors[row] = f"missing field {name}"
        elif item is None or item.ndim == 0 or not _array_kind_fits(item, spec):
            errors[row] = f"field {name} is {_kind(value)}, expected {_expected(spec)}"
        elif not _fits(item.shape, spec.shape if agreed is None else agreed):
            want = spec.shape if agreed is None else agreed
            errors[row] = f"field {name} has shape {_shape_text(item.shape)}, expected {_shape_text(want)}"
        else:
            converted, wrong = _cast(name, item[None], spec)
            if wrong:
                errors[row] = wrong[0]
            else:
                good[row] = converted[0]
                agreed = item.shape
    fill = np.zeros(agreed or tuple(1 if d is None else d for d in spec.shape), dtype=spec.dtype)
    return np.stack([good.get(row, fill) for row in range(len(values))]), errors


def column_array(
    name: str, column: Column, spec: InputSpec, names: Sequence[str] = ()
) -> tuple[Array | None, RowErrors]:
    """A field's values as the input's array, and the rows that cannot feed it; ``names`` name the
    columns of a matrix made of several fields."""
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
                field = name
                if names and array.ndim == 2:
                    field = names[int(np.flatnonzero(~np.isfinite(array[row]))[0])]
                errors.setdefault(row, f"field {field} is not a finite number")
    return array, errors


class _Names:
    """A batch's field names, matched exactly first, then loosely."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields
        self._loose: dict[str, str] | None = None

    def column(self, name: str, loose: bool = True) -> tuple[str, Column] | None:
        column = self.fields.column(name)
        if column is not None:
            return name, column
        if not loose:
            return None
        if self._loose is None:
            self._loose = {}
            for n in sorted(self.fields.names()):  # names that compare equal: the same one every time
                self._loose.setdefault(normalize_field_name(n), n)
        found = self._loose.get(normalize_field_name(name))
        if found is None:
            return None
        column = self.fields.column(found)
        return None if column is None else (found, column)

    def available(self) -> str:
        names = sorted(self.fields.names())
        return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"


@dataclass(frozen=True)
class Bound:
    """A batch bound to a model: the input arrays of the rows that bound, those rows' positions, and a
    failure for each row that did not."""

    arrays: dict[str, Array]
    rows: npt.NDArray[np.intp]
    failures: list[Failure]

    def only(self, wanted: npt.NDArray[np.int64], decoded: Decoded) -> Bound:
        """This binding restricted to the rows at positions ``wanted`` (sorted) of ``decoded``."""
        keep = np.isin(self.rows, wanted)
        if keep.all():
            arrays, rows = self.arrays, self.rows
        else:
            arrays = {name: array[keep] for name, array in self.arrays.items()}
            rows = self.rows[keep]
        failures = self.failures
        if failures:
            chosen = {id(decoded.sources[i]) for i in wanted.tolist()}
            failures = [f for f in failures if id(f.record) in chosen]
        return Bound(arrays, rows, failures)


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
            stackable = bool(self.input_fields) and not fields_used
            # the input the input_fields are for takes a field of its own exact name only
            found = names.column(spec.name, loose=not stackable)
            if found is not None:
                array, wrong = column_array(found[0], found[1], spec)
            elif stackable:
                fields_used = True
                array, wrong = self._stack(names, spec, n)
            else:
                array, wrong = self._unnamed(decoded.fields, names, spec, n, len(self.inputs) == 1)
            for row, message in wrong.items():
                errors.setdefault(row, message)
            if array is not None:
                arrays[spec.name] = array
        if not errors:
            return Bound(arrays, np.arange(n), [])
        keep = np.asarray([row for row in range(n) if row not in errors], dtype=np.intp)
        failures = [
            Failure(decoded.sources[row], Reason.RECORD_INVALID, message)
            for row, message in sorted(errors.items())
        ]
        kept = {name: array[keep] for name, array in arrays.items()} if len(keep) else {}
        return Bound(kept, keep, failures)

    def _stack(self, names: _Names, spec: InputSpec, n: int) -> tuple[Array | None, RowErrors]:
        width = spec.shape[-1] if spec.shape else None
        if len(spec.shape) != 1 or width not in (None, len(self.input_fields)):
            message = f"input {spec.describe()} cannot take the {len(self.input_fields)} input_fields"
            return None, _all_rows(n, message)
        fast = self._stack_numbers(names.fields, spec)
        if fast is not None:
            return fast, {}
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

    def _stack_numbers(self, fields: Fields, spec: InputSpec) -> Array | None:
        """The common case at the cost of one pass: every row has every field, as a finite number."""
        if spec.dtype.kind != "f" or len(self.input_fields) < 2:
            return None
        values = fields.values(self.input_fields)
        if values is None or not set(map(type, itertools.chain.from_iterable(values))) <= _PLAIN_NUMBERS:
            return None
        array = np.array(values, dtype=np.float64)
        if not np.isfinite(array).all():
            return None
        return array.astype(spec.dtype, copy=False)

    @staticmethod
    def _unnamed(
        fields: Fields, names: _Names, spec: InputSpec, n: int, only_input: bool
    ) -> tuple[Array | None, RowErrors]:
        default = fields.default_matrix()
        if (
            default is not None
            and only_input
            and len(spec.shape) == 1
            and spec.shape[0] in (None, default[0].shape[1])
        ):
            return column_array(spec.name, default[0], spec, default[1])
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
        arrays[spec.name] = (
            np.full(shape, "", dtype=object) if spec.is_string else np.zeros(shape, dtype=spec.dtype)
        )
    return arrays
