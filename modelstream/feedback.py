"""Feedback: labels that come back for records the job scored, joined with what each version predicted.

A feedback message is a JSON object ``{"dataType": ..., "record_id": ..., "label": ...}`` (classifiers) or
``{"dataType": ..., "record_id": ..., "value": ...}`` (regressions) on the feedback topic. The job keeps the
data type's most recent results in a ring of ``max_records`` slots, one per record id, with a column per
version (the served one and its shadows); a slot older than ``max_age_ms`` (processing time) no longer
matches. Feedback that matches adds to each version's ``LiveQuality``; feedback for a record id not (or no
longer) kept is counted as unmatched, feedback without a usable label as invalid: neither is an error.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from modelstream.contract import ScoreBatch
from protobufs.modelstream_pb2 import LiveQuality, ServedResults

MAX_VERSIONS = 8  # version columns; a new version takes the column of one that left


class FeedbackError(ValueError):
    """A feedback message that cannot be used: the message says why."""


@dataclass(frozen=True)
class Feedback:
    data_type: str
    record_id: str
    label: str | None  # classifiers
    value: float | None  # regressions


def _label_text(label: object) -> str:
    """A label as the results write classes: a whole number without a decimal point."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def parse(raw: bytes) -> Feedback:
    """The feedback in a message, or FeedbackError."""
    return Feedback(*_fields(raw))


def _fields(raw: bytes) -> tuple[str, str, str | None, float | None]:
    """A message's data type, record id, label and value, or FeedbackError."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise FeedbackError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise FeedbackError(f"a JSON {type(message).__name__}, not an object")
    data_type, record_id = message.get("dataType"), message.get("record_id")
    if not isinstance(data_type, str) or not data_type:
        raise FeedbackError("no dataType")
    if record_id is None or record_id == "":
        raise FeedbackError("no record_id")
    label, value = message.get("label"), message.get("value")
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    text = None if label is None or isinstance(label, dict | list) else _label_text(label)
    return data_type, str(record_id), text, number


def _truth(label: str | None, value: float | None) -> float:
    """What a regression's prediction is compared with: the value, else the label as a number; NaN
    when neither."""
    if value is not None:
        return value
    try:
        number = float(label)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


@dataclass(frozen=True)
class FeedbackBatch:
    """The feedback in a micro-batch's messages, a column per field."""

    record_ids: list[str]
    labels: list[str | None]  # what a classifier's prediction is compared with
    truths: npt.NDArray[np.float64]  # what a regression's prediction is compared with (NaN: nothing)


def parse_batch(raws: Sequence[bytes]) -> tuple[FeedbackBatch, list[tuple[int, str]]]:
    """The feedback in messages, and the position of each message that is not feedback with why."""
    ids: list[str] = []
    labels: list[str | None] = []
    truths: list[float] = []
    broken: list[tuple[int, str]] = []
    for position, raw in enumerate(raws):
        try:
            _, record_id, label, value = _fields(raw)
        except FeedbackError as e:
            broken.append((position, str(e)))
            continue
        ids.append(record_id)
        labels.append(label)
        truths.append(_truth(label, value))
    return FeedbackBatch(ids, labels, np.array(truths, dtype=np.float64)), broken


INITIAL_SLOTS = 64


class ServedRing:
    """The most recent results of one data type, per record id and version, in fixed-size arrays."""

    def __init__(self, max_records: int, max_age_ms: int, stored: ServedResults | None = None) -> None:
        self.max_records = max(int(max_records), 1)
        self.max_age_ms = max_age_ms
        # the arrays grow (doubling) up to max_records as results come: thousands of data types with few
        # records each keep little
        kept = len(stored.record_ids) if stored is not None else 0
        size = kept if 0 < kept <= self.max_records else min(self.max_records, INITIAL_SLOTS)
        self._ids: list[str] = [""] * size
        self._at = np.zeros(size, dtype=np.int64)
        self._predictions = np.full((size, MAX_VERSIONS), np.nan)
        self._versions: list[str] = []
        self._classifier: list[bool] = []
        self._labels: list[str] = []
        self._label_index: dict[str, int] = {}
        self._index: dict[str, int] = {}
        self._next = 0
        if stored is not None and len(stored.record_ids) == size:
            self._restore(stored)

    @property
    def size(self) -> int:
        """The slots held now (at most max_records)."""
        return len(self._ids)

    def _grow(self) -> None:
        size = min(self.max_records, 2 * self.size)
        more = size - self.size
        self._ids.extend([""] * more)
        self._at = np.concatenate([self._at, np.zeros(more, dtype=np.int64)])
        self._predictions = np.concatenate([self._predictions, np.full((more, MAX_VERSIONS), np.nan)])

    def _restore(self, stored: ServedResults) -> None:
        self._ids = list(stored.record_ids)
        self._versions = list(stored.versions)
        self._classifier = list(stored.classifier)
        if stored.stored_at_raw:
            self._at[:] = np.frombuffer(stored.stored_at_raw, dtype="<i8")
            predictions = np.frombuffer(stored.predictions_raw, dtype="<f8")
            if predictions.size == self.size * len(self._versions):
                self._predictions[:, : len(self._versions)] = predictions.reshape(self.size, -1)
        else:  # written before the raw fields
            self._at[:] = np.asarray(stored.stored_at, dtype=np.int64)
            predictions = np.asarray(stored.predictions, dtype=np.float64)
            if predictions.size == self._predictions.size:
                self._predictions[:] = predictions.reshape(self._predictions.shape)
        self._labels = list(stored.labels)
        self._label_index = {label: i for i, label in enumerate(self._labels)}
        self._index = {record_id: slot for slot, record_id in enumerate(self._ids) if record_id}
        self._next = int(stored.next) % self.size

    def to_message(self) -> ServedResults:
        return ServedResults(
            record_ids=self._ids,
            stored_at_raw=self._at.astype("<i8", copy=False).tobytes(),
            predictions_raw=self._predictions[:, : len(self._versions)].astype("<f8", copy=False).tobytes(),
            versions=self._versions,
            classifier=self._classifier,
            labels=self._labels,
            next=self._next,
        )

    def _column(self, version: str, loaded: Collection[str], classifier: bool) -> int:
        if version in self._versions:
            column = self._versions.index(version)
        elif len(self._versions) < MAX_VERSIONS:
            self._versions.append(version)
            self._classifier.append(classifier)
            column = len(self._versions) - 1
        else:
            column = next((i for i, v in enumerate(self._versions) if v not in loaded), 0)
            self._versions[column] = version
            self._predictions[:, column] = np.nan
        self._classifier[column] = classifier
        return column

    def _codes(self, scores: ScoreBatch) -> npt.NDArray[np.float64] | None:
        """A result per record as a number: the value, or the class's index among the labels."""
        if scores.labels is None:
            return None if scores.values is None else scores.values.astype(np.float64, copy=False)
        index = self._label_index
        for label in dict.fromkeys(scores.labels):  # the batch's classes, in order of appearance
            if label not in index:
                index[label] = len(self._labels)
                self._labels.append(label)
        return np.fromiter(map(index.__getitem__, scores.labels), np.float64, len(scores.labels))

    def add(
        self, version: str, loaded: Collection[str], ids: Sequence[str], scores: ScoreBatch, now_ms: int
    ) -> None:
        """Keep a version's results of ``ids`` (a record seen before keeps its slot)."""
        codes = self._codes(scores)
        if codes is None:
            return  # neither a class nor a value: nothing feedback compares with
        column = self._column(version, loaded, scores.labels is not None)
        index = self._index
        slots: slice | npt.NDArray[np.int64]
        if index.keys().isdisjoint(ids) and len(ids) <= self.max_records and len(set(ids)) == len(ids):
            slots = self._claim(ids)  # new records, the usual case
        else:  # a shadow's or an ensemble member's results of records already kept; else one by one
            known = [index.get(record_id, -1) for record_id in ids]
            slots = self._claim_each(ids) if -1 in known else np.asarray(known, dtype=np.int64)
        self._at[slots] = now_ms
        self._predictions[slots, column] = codes

    def _claim(self, ids: Sequence[str]) -> slice | npt.NDArray[np.int64]:
        """Slots for new, distinct record ids: the next ones in a row (growing first while they would
        wrap around a ring below its bound)."""
        n, start = len(ids), self._next
        while start + n >= self.size and self.size < self.max_records:
            self._grow()
        size = self.size
        if start + n <= size:  # no wrap-around: the usual case, slices rather than index arrays
            self._replace(start, ids)
            self._next = (start + n) % size
            return slice(start, start + n)
        first = size - start
        self._replace(start, ids[:first])
        self._replace(0, ids[first:])
        self._next = n - first
        return np.arange(start, start + n, dtype=np.int64) % size

    def _replace(self, at: int, ids: Sequence[str]) -> None:
        """Put ``ids`` in the slots from ``at`` on, evicting the records held there."""
        end, index, held = at + len(ids), self._index, self._ids
        for old in filter(None, held[at:end]):
            del index[old]
        held[at:end] = ids
        index.update(zip(ids, range(at, end), strict=True))
        self._predictions[at:end] = np.nan

    def _claim_each(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Slots for record ids some of which are kept already (or repeated), one by one."""
        index = self._index
        slots = np.empty(len(ids), dtype=np.int64)
        for row, record_id in enumerate(ids):
            slot = index.get(record_id)
            if slot is None:
                slot = self._next
                if slot + 1 == self.size and self.size < self.max_records:
                    self._grow()
                self._next = (slot + 1) % self.size
                ids_of = self._ids
                old = ids_of[slot]
                if old:
                    del index[old]
                ids_of[slot] = record_id
                index[record_id] = slot
                self._predictions[slot] = np.nan
            slots[row] = slot
        return slots

    def _take(self, record_ids: Sequence[str], now_ms: int) -> npt.NDArray[np.int64]:
        """The slot of each record id's results, -1 when it is not kept or too old; the slots are freed,
        so a second feedback for a record is unmatched."""
        pop = self._index.pop
        slots = np.fromiter((pop(record_id, -1) for record_id in record_ids), np.int64, len(record_ids))
        found = slots >= 0
        held = self._ids
        for slot in slots[found].tolist():
            held[slot] = ""
        slots[found] = np.where(now_ms - self._at[slots[found]] > self.max_age_ms, -1, slots[found])
        return slots

    def take(self, record_id: str, now_ms: int) -> dict[str, str | float] | None:
        """What each version predicted for ``record_id`` (class or value), or None when it is not kept or
        too old; the slot is freed."""
        slot = int(self._take([record_id], now_ms)[0])
        if slot < 0:
            return None
        row = self._predictions[slot]
        found: dict[str, str | float] = {}
        for column, version in enumerate(self._versions):
            code = row[column]
            if not math.isnan(code):
                found[version] = self._labels[int(code)] if self._classifier[column] else float(code)
        return found

    def join(
        self, feedback: FeedbackBatch, now_ms: int, qualities: Mapping[str, LiveQuality]
    ) -> tuple[int, int]:
        """Add feedback to the live quality of each version in ``qualities`` that predicted its record.
        Returns (unmatched, invalid): feedback for a record not kept (or too old), and matched feedback no
        version could use (no label of the kind it predicts: a class for a classifier, a number for a
        regression)."""
        slots = self._take(feedback.record_ids, now_ms)
        matched = np.flatnonzero(slots >= 0)
        predictions = self._predictions[slots[matched]]
        used = np.zeros(len(matched), dtype=bool)
        classes: npt.NDArray[np.float64] | None = None
        for column, version in enumerate(self._versions):
            quality = qualities.get(version)
            if quality is None:
                continue
            predicted = predictions[:, column]
            if self._classifier[column]:
                if classes is None:
                    classes = self._class_codes([feedback.labels[row] for row in matched.tolist()])
                usable = ~np.isnan(predicted) & ~np.isnan(classes)
                quality.labelled += int(np.count_nonzero(usable))
                quality.correct += int(np.count_nonzero(predicted[usable] == classes[usable]))
            else:
                truths = feedback.truths[matched]
                usable = ~np.isnan(predicted) & ~np.isnan(truths)
                if usable.any():
                    error = predicted[usable] - truths[usable]
                    quality.regression = True
                    quality.labelled += int(np.count_nonzero(usable))
                    quality.abs_error_sum += float(np.abs(error).sum())
                    quality.squared_error_sum += float(error @ error)
            used |= usable
        return len(slots) - len(matched), int(np.count_nonzero(~used))

    def _class_codes(self, labels: Sequence[str | None]) -> npt.NDArray[np.float64]:
        """Labels as the codes the ring keeps classes as: -1 for a class no version predicted, NaN for no
        label."""
        get = self._label_index.get
        return np.fromiter(
            (math.nan if label is None else get(label, -1) for label in labels), np.float64, len(labels)
        )
