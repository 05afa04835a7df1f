"""Output: zstd Parquet with a fixed schema, plus the plumbing between jobs.

The output schema is known before the run: `id`, `text`, `source_file`, `source_record`, the
input fields listed in `output.metadata_columns` (as strings), and the columns every configured
stage declares in the registry. Every task writes files with the same schema, whatever its
documents happened to carry; a missing annotation is null.

Files are written under a hidden temporary name and renamed when complete, so a killed task
never leaves a half-written file that looks like output.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

import orjson
import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

from .readers import SOURCE_FILE, SOURCE_RECORD
from .registry import Column
from .steps import DROP_REASON, DROP_STAGE, Accounted

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


def output_schema(stage_columns: Iterable[Column], metadata_columns: Iterable[str] = (), rejected: bool = False) -> pa.Schema:
    fields: dict[str, pa.Field] = {}
    cols = list(BASE_COLUMNS) + [Column(m, pa.string(), "input field") for m in metadata_columns] + list(stage_columns)
    if rejected:
        cols += REJECTED_COLUMNS
    for c in cols:
        if c.name in fields and fields[c.name].type != c.type:
            raise ValueError(f"column {c.name!r} declared twice with different types ({fields[c.name].type} vs {c.type})")
        fields[c.name] = pa.field(c.name, c.type)
    return pa.schema(list(fields.values()))


def _coerce(value: Any, typ: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
    if pa.types.is_floating(typ):
        v = float(value)
        return None if math.isnan(v) else v
    if pa.types.is_integer(typ):
        return int(value)
    if pa.types.is_boolean(typ):
        return bool(value)
    if hasattr(value, "tolist"):  # numpy arrays / scalars
        return value.tolist()
    return value


class _AtomicParquetWriter(ParquetWriter):
    """datatrove's ParquetWriter, but each file is written as `.NAME.partial` and renamed on close."""

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs: Any) -> str:
        name = super()._get_output_filename(document, rank, **kwargs)
        if rank == "XXXXX":  # datatrove asks for this name only as a per-file stats key, not to open a file
            return name
        folder, _, base = name.rpartition("/")
        return f"{folder}/.{base}.partial" if folder else f".{base}.partial"

    _aborted = False

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        # a task that fails (or is closed before its input is exhausted) must not publish what it wrote so far
        self._aborted = exc_type is not None
        try:
            self.close()
        finally:
            self._aborted = False

    def close_file(self, filename: str) -> None:
        super().close_file(filename)
        open_files = self.output_mg.get_open_files()
        if filename in open_files:
            # flush (on object stores: upload) the bytes before the rename, not after it
            self.output_mg.pop(filename).close()
        if self._aborted:
            self.output_folder.rm(filename)
            return
        folder, _, base = filename.rpartition("/")
        final = base[1 : -len(".partial")]
        self.output_folder.mv(filename, f"{folder}/{final}" if folder else final)


def _output_row(self: Any, document: Document) -> dict:
    meta = document.metadata
    row = {}
    for f in self.schema:
        if f.name == "id":
            row["id"] = document.id
        elif f.name == "text":
            row["text"] = document.text
        else:
            row[f.name] = _coerce(meta.get(f.name), f.type)
    return row


class OutputWriter(Accounted, _AtomicParquetWriter):
    """The final Parquet output (and, with another folder, the `rejected/` output)."""

    type = "curate-writer"
    name = "write"
    plumbing = True

    def __init__(self, output_folder: str, schema: pa.Schema, compression: str = "zstd", rows_per_group: int = 1000,
                 label: str = "write") -> None:
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

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1):  # type: ignore[override]
        with self:
            for document in data:
                with self.track_time():
                    self.write(document, rank)
                yield document


# ---------------------------------------------------------------------------- between jobs

INTERMEDIATE_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())])


def _intermediate_row(self: Any, document: Document) -> dict:
    return {
        "id": document.id,
        "text": document.text,
        "metadata": orjson.dumps(document.metadata, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode(),
    }


class IntermediateWriter(Accounted, _AtomicParquetWriter):
    """Hands documents (with all their metadata) from one job to the next."""

    type = "curate-plumbing"
    name = "handoff write"
    plumbing = True

    def __init__(self, folder: str) -> None:
        super().__init__(folder, output_filename="${rank}.parquet", compression="zstd", adapter=_intermediate_row,
                         schema=INTERMEDIATE_SCHEMA, max_file_size=-1)
        self.configure(label="handoff write")

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1):  # type: ignore[override]
        with self:
            for document in data:
                self.write(document, rank)
                yield document


def _from_intermediate(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    return {"text": data["text"], "id": data["id"], "metadata": json.loads(data["metadata"])}


class IntermediateReader(Accounted, ParquetReader):
    type = "curate-plumbing"
    name = "handoff read"
    plumbing = True

    def __init__(self, folder: str) -> None:
        super().__init__(folder, adapter=_from_intermediate, glob_pattern="[0-9]*.parquet")
        self.configure(label="handoff read")

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document | None:
        self.record_in(len(data["text"]))
        doc = super().get_document_from_dict(data, source_file, id_in_file)
        if doc is None:  # empty text survives a handoff (ESD may empty a doc and keep it)
            doc = Document(**self.adapter(data, source_file, id_in_file))
        return doc

    def _count_in(self, data):  # a source: records are counted as they are read
        return data
