"""Output: zstd Parquet with a fixed schema, plus the plumbing between jobs.

The output schema is known before the run: `id`, `text`, `source_file`, `source_record`, the
input fields listed in `output.metadata_columns` (with the input's Arrow type, decided at plan
time by `readers.metadata_column_types`), and the columns every configured stage declares in the
registry. Every task writes files with the same schema, whatever its documents happened to carry;
a missing annotation is null. A value the column's type cannot hold is converted when nothing is
lost (3.0 into an int column, an ISO string into a timestamp column); otherwise it is written as
null and counted as `unfit_value/COLUMN` in the writer's stats: never a failed task.

Files are written under a hidden temporary name and renamed when complete, so a killed task
never leaves a half-written file that looks like output; a task that fails, or a file whose
last write or close fails, removes its temporary file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from datatrove.data import Document
from datatrove.pipeline.readers import ParquetReader
from loguru import logger

from curate.core.atomic import AtomicParquetWriter
from curate.core.shards import in_order
from curate.core.stage_api import Column
from curate.core.steps import DROP_REASON, DROP_STAGE, Accounted

from .readers import SOURCE_FILE, SOURCE_RECORD

BASE_COLUMNS = [
    Column("id", pa.string(), "document id (input id field, or FILE/RECORD)"),
    Column("text", pa.string(), "document text after every stage"),
    Column(SOURCE_FILE, pa.string(), "input file the document came from"),
    Column(SOURCE_RECORD, pa.int64(), "0-based record position in that file"),
]
REJECTED_COLUMNS = [
    Column(DROP_STAGE, pa.string(), "label of the stage that dropped the document"),
    Column(DROP_REASON, pa.string(), "why it was dropped"),
]


def output_schema(
    stage_columns: Iterable[Column],
    metadata_columns: Iterable[str] | Mapping[str, pa.DataType | None] = (),
    rejected: bool = False,
) -> pa.Schema:
    """The schema every task writes. `metadata_columns`: names (string columns) or {name: Arrow type}
    as `readers.metadata_column_types` returns it (None, a name never seen in the input: string)."""
    types = metadata_columns if isinstance(metadata_columns, Mapping) else dict.fromkeys(metadata_columns)
    fields: dict[str, pa.Field] = {}
    cols = (
        list(BASE_COLUMNS)
        + [Column(m, t if t is not None else pa.string(), "input field") for m, t in types.items()]
        + list(stage_columns)
    )
    if rejected:
        cols += REJECTED_COLUMNS
    for c in cols:
        if c.name in fields and fields[c.name].type != c.type:
            raise ValueError(
                f"column {c.name!r} declared twice with different types ({fields[c.name].type} vs {c.type})"
            )
        fields[c.name] = pa.field(c.name, c.type)
    return pa.schema(list(fields.values()))


# ---------------------------------------------------------------------------- values into column types

UNFIT = object()  # what a coercer returns for a value the type cannot hold without losing information
JSON_TEXT = "json_text/"  # writer stat: values of a string column that were not strings (written as JSON text)
_INT_TEXT = re.compile(r"[+-]?[0-9]+")


def _to_string(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()  # not orjson: that would write the timestamp as a quoted JSON string
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return UNFIT
    if isinstance(v, decimal.Decimal):
        return str(v)
    # numbers, booleans, lists and objects as JSON (a column that was not one type in the input)
    try:
        return orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str).decode()
    except TypeError:  # orjson stops at 64-bit integers; the standard library does not
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)


def _to_int(lo: int, hi: int, v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return UNFIT
    if isinstance(v, (int, np.integer)):
        x = int(v)
    elif isinstance(v, (float, np.floating)):
        if not math.isfinite(v) or not float(v).is_integer():
            return UNFIT  # pyarrow would truncate 2.5 to 2 without a word
        x = int(v)
    elif (
        isinstance(v, str)
        and _INT_TEXT.fullmatch(v.strip())
        or isinstance(v, decimal.Decimal)
        and v == v.to_integral_value()
    ):
        x = int(v)
    else:
        return UNFIT
    return x if lo <= x <= hi else UNFIT


def _to_float(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return UNFIT
    if isinstance(v, (int, float, np.integer, np.floating, decimal.Decimal)):
        x = float(v)
    elif isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            return UNFIT
    else:
        return UNFIT
    return None if math.isnan(x) else x  # a NaN score (e.g. of an empty text) is written as null


def _to_bool(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v in ("true", "false"):
        return v == "true"
    return UNFIT


def _to_timestamp(typ: pa.DataType, v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, str):  # what a datetime becomes in the JSON handoff between jobs
        try:
            return dt.datetime.fromisoformat(v)
        except ValueError:
            pass
        try:  # nanoseconds, which datetime cannot hold
            return pc.cast(pa.array([v]), typ)[0].as_py()
        except (pa.ArrowException, ValueError):
            return UNFIT
    return UNFIT  # a number would be read as an epoch offset in the column's unit: a guess


def _to_date(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time(0) else UNFIT
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return UNFIT
    return UNFIT


def _to_list(item: Callable[[Any], Any], size: int, v: Any) -> Any:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, (list, tuple)) or (size >= 0 and len(v) != size):
        return UNFIT
    out = [None if x is None else item(x) for x in v]
    return UNFIT if any(x is UNFIT for x in out) else out


def _to_struct(fields: list[tuple[str, Callable[[Any], Any]]], names: frozenset[str], v: Any) -> Any:
    if not isinstance(v, dict) or not names.issuperset(v):
        return UNFIT  # pyarrow would drop the keys the struct does not have
    out = {}
    for name, fn in fields:
        x = v.get(name)
        out[name] = x = None if x is None else fn(x)
        if x is UNFIT:
            return UNFIT
    return out


def _to_map(key: Callable[[Any], Any], item: Callable[[Any], Any], v: Any) -> Any:
    pairs = v.items() if isinstance(v, dict) else v
    try:
        out = [(key(k), None if x is None else item(x)) for k, x in pairs]
    except (TypeError, ValueError):  # not a sequence of pairs
        return UNFIT
    return UNFIT if any(k is UNFIT or k is None or x is UNFIT for k, x in out) else out


def _to_decimal(typ: pa.DataType, v: Any) -> Any:
    if isinstance(v, (bool, np.bool_, float, np.floating)):
        return UNFIT  # a float's decimal digits are a guess
    if isinstance(v, (int, np.integer)):
        v = decimal.Decimal(int(v))
    elif isinstance(v, str):  # what a decimal becomes in the JSON handoff between jobs
        try:
            v = decimal.Decimal(v.strip())
        except decimal.InvalidOperation:
            return UNFIT
    return _to_scalar(typ, v)  # pyarrow refuses digits beyond the column's scale


def _to_scalar(typ: pa.DataType, v: Any) -> Any:
    try:
        pa.scalar(v, type=typ)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return UNFIT
    return v


def coercer(typ: pa.DataType) -> Callable[[Any], Any]:
    """A function taking a non-null value to one a `typ` column holds, or to UNFIT."""
    t = pa.types
    if t.is_string(typ) or t.is_large_string(typ):
        return _to_string
    if t.is_integer(typ):
        info = np.iinfo(typ.to_pandas_dtype())
        return partial(_to_int, int(info.min), int(info.max))
    if t.is_floating(typ):
        return _to_float
    if t.is_boolean(typ):
        return _to_bool
    if t.is_timestamp(typ):
        return partial(_to_timestamp, typ)
    if t.is_date(typ):
        return _to_date
    if t.is_decimal(typ):
        return partial(_to_decimal, typ)
    if t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ):
        return partial(_to_list, coercer(typ.value_type), typ.list_size if t.is_fixed_size_list(typ) else -1)
    if t.is_struct(typ):
        fields = [(f.name, coercer(f.type)) for f in typ]
        return partial(_to_struct, fields, frozenset(n for n, _ in fields))
    if t.is_map(typ):
        return partial(_to_map, coercer(typ.key_type), coercer(typ.item_type))
    return partial(_to_scalar, typ)


def _output_row(self: OutputWriter, document: Document) -> dict:
    row: dict[str, Any] = {"id": document.id, "text": document.text}
    meta = document.metadata
    for name, fn in self._coercers():
        v = meta.get(name)
        if v is not None:
            if fn is _to_string and not isinstance(v, str):
                # kept as JSON text, and counted: a number in a column of strings is news to the user
                self.stat_update(f"{JSON_TEXT}{name}")
            v = fn(v)
            if v is UNFIT:
                self.unfit(name, meta.get(name), document.id)
                v = None
        row[name] = v
    return row


class OutputWriter(Accounted, AtomicParquetWriter):
    """The final Parquet output (and, with another folder, the `rejected/` output).

    `file_metadata` goes into every file's Parquet key-value metadata (e.g. the curate version and
    the config fingerprint), next to pyarrow's own `ARROW:schema` entry.
    """

    type = "curate-writer"
    name = "write"
    plumbing = True

    def __init__(
        self,
        output_folder: str,
        schema: pa.Schema,
        compression: str = "zstd",
        rows_per_group: int = 1000,
        label: str = "write",
        file_metadata: Mapping[str, str] | None = None,
    ) -> None:
        if file_metadata:
            wrong = {k: v for k, v in file_metadata.items() if not isinstance(k, str) or not isinstance(v, str)}
            if wrong:
                raise TypeError(f"OutputWriter file_metadata: keys and values must be strings, got {wrong!r}")
            schema = schema.with_metadata({**(schema.metadata or {}), **file_metadata})
        super().__init__(
            output_folder,
            output_filename="${rank}.parquet",
            compression=None if compression == "none" else compression,
            adapter=_output_row,
            batch_size=rows_per_group,
            max_file_size=-1,  # one file per task: the unit of resume and of atomic rename
            schema=schema,
        )
        self.configure(label=label)

    def _coercers(self) -> list[tuple[str, Callable[[Any], Any]]]:
        fns = self.__dict__.get("_coercer_list")
        if fns is None:  # built in the worker (closures of partials pickle, but need not travel)
            fns = self.__dict__["_coercer_list"] = [
                (f.name, coercer(f.type)) for f in self.schema if f.name not in ("id", "text")
            ]
        return fns

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_coercer_list", None)
        return state

    def unfit(self, column: str, value: Any, doc_id: str) -> None:
        """Count (and log once per column and task) a value written as null because the column cannot hold it."""
        key = f"unfit_value/{column}"
        first = key not in self.stats.stats
        self.stat_update(key)
        if first:
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            logger.warning(
                f"{self.label or self.name}: column {column!r} ({self.schema.field(column).type}) cannot hold "
                f"{shown} ({type(value).__name__}) of document {doc_id!r}; written as null, counted as {key} "
                "(list the column with the type you want, or fix the input)"
            )
        return None

    def _write_batch(self, filename: str) -> None:
        rows = self._batches.get(filename)
        try:
            super()._write_batch(filename)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            if not rows:
                raise
            # a value got past the coercers: null it (counted) rather than fail the task
            self._batches[filename] = self._repair(rows)
            super()._write_batch(filename)

    def _repair(self, rows: list[dict]) -> list[dict]:
        for f in self.schema:
            column = [r.get(f.name) for r in rows]
            try:
                pa.array(column, type=f.type)
                continue
            except (pa.ArrowException, OverflowError, TypeError, ValueError):
                pass
            for r in rows:
                try:
                    pa.array([r.get(f.name)], type=f.type)
                except (pa.ArrowException, OverflowError, TypeError, ValueError):
                    self.unfit(f.name, r.get(f.name), str(r.get("id")))
                    r[f.name] = None
        return rows

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        with self:
            for document in data:
                with self.track_time():
                    self.write(document, rank)
                yield document


# ---------------------------------------------------------------------------- between jobs

HANDOFF_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())])


# bytes cross the JSON handoff as {TAG: base64}: as str(b"...") they reached a binary column as the
# characters of their repr
_BYTES_TAG = "__curate_bytes_b64__"


def _handoff_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {_BYTES_TAG: base64.b64encode(bytes(v)).decode("ascii")}
    return str(v)  # datetime subclasses (pandas), Decimal: parsed back by the output's coercers


def _handoff_object(d: dict) -> Any:
    return base64.b64decode(d[_BYTES_TAG]) if len(d) == 1 and _BYTES_TAG in d else d


def _handoff_row(self: Any, document: Document) -> dict:
    try:
        meta = orjson.dumps(document.metadata, option=orjson.OPT_SERIALIZE_NUMPY, default=_handoff_default).decode()
    except TypeError:  # an integer beyond 64 bits
        meta = json.dumps(document.metadata, ensure_ascii=False, default=_handoff_default)
    return {"id": document.id, "text": document.text, "metadata": meta}


class HandoffWriter(Accounted, AtomicParquetWriter):
    """Hands documents (with all their metadata) from one job to the next."""

    type = "curate-plumbing"
    name = "handoff write"
    plumbing = True

    def __init__(self, folder: str) -> None:
        super().__init__(
            folder,
            output_filename="${rank}.parquet",
            compression="zstd",
            adapter=_handoff_row,
            schema=HANDOFF_SCHEMA,
            max_file_size=-1,
        )
        self.configure(label="handoff write")

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        written = 0
        with self:
            for document in data:
                self.write(document, rank)
                written += 1
                yield document
        if not written:
            self._write_empty(rank)

    def _write_empty(self, rank: int) -> None:
        """A task that hands nothing on still leaves its file (zero rows): the next job reads an empty handoff
        as the normal case it is, with no "no files found" warning per task."""
        import pyarrow.parquet as pq

        from curate.core.atomic import write_atomic

        sink = pa.BufferOutputStream()
        pq.write_table(HANDOFF_SCHEMA.empty_table(), sink)
        write_atomic(self.output_folder, f"{rank:05d}.parquet", sink.getvalue().to_pybytes())


def _from_handoff(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    raw = data["metadata"]
    meta = json.loads(raw, object_hook=_handoff_object) if _BYTES_TAG in raw else json.loads(raw)
    return {"text": data["text"], "id": data["id"], "metadata": meta}


class HandoffReader(Accounted, ParquetReader):
    type = "curate-plumbing"
    name = "handoff read"
    plumbing = True

    def __init__(self, folder: str) -> None:
        super().__init__(folder, adapter=_from_handoff, glob_pattern="[0-9]*.parquet")
        self.data_folder = in_order(self.data_folder)  # type: ignore[has-type]  # datatrove leaves it untyped
        self.configure(label="handoff read")
        self._empty_warning = True  # datatrove warns once that an empty text is skipped; here it is kept (below)

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document | None:
        self.record_in(len(data["text"]))
        doc = super().get_document_from_dict(data, source_file, id_in_file)
        if doc is None:  # empty text survives a handoff (ESD may empty a doc and keep it)
            doc = Document(**self.adapter(data, source_file, id_in_file))
        return doc

    def _count_in(self, data):  # a source: records are counted as they are read
        return data
