"""What every input format shares: the `input:` keys, the one record loop, the registry of formats.

A format is one module: an options model (a subclass of `InputConfig` holding the keys only that
format has) and a `Source` subclass that says how to walk one file (`records`) and turn one raw
record into fields (`parse`), registered with `@register_reader(name, Options)`. The loop here does
the rest, the same for every format: it counts every input record and either drops it with a
reason (`on_error: skip`, the default; the file and record are logged) or stops with an
`InputError` naming them (`on_error: fail`); empty and over-long texts are dropped with a reason;
a file that is cut short is one `truncated_file` drop, a corrupt one one `corrupt_file`, and what
was read before stays. Each document carries `source_file` and `source_record` (its 0-based
position in that file).

`validate_input` picks the options model by `format` (the config's `input:` is a union keyed by
it): a key of another format is an error naming that format.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from curate.core.errors import ConfigError
from curate.core.options import LocalPath, StrictModel, format_validation_error
from curate.core.registry import Registry
from curate.core.shards import contiguous_share, in_order
from curate.core.steps import Accounted

from .column_types import parse_type
from .files import STREAM_ERRORS, is_remote, split_path, stream_error_reason

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_FILE = "source_file"
SOURCE_RECORD = "source_record"
_MISSING = object()
# records of each input file whose values decide each metadata column's type (read at plan time): every
# file counts, so a field only later files hold gets its type from them
TYPE_SAMPLE_RECORDS = 100
# records of each file after the first whose field names preflight looks at (the first file: all it asks for)
_FIELD_SAMPLE_RECORDS = 20


# ---------------------------------------------------------------------------- options


class InputConfig(StrictModel):
    """The `input:` keys of every format. A format's own options model subclasses it."""

    format: str = Field(description="file format of the input shards (jsonl, parquet, warc, or a registered reader)")
    path: LocalPath = Field(description="a file or a folder; any fsspec URL (s3://, hf://datasets/..., gs://)")
    glob: str | None = Field(None, description="only files matching this pattern (relative to path)")
    recursive: bool = Field(True, description="look into sub-folders of path")
    limit: int = Field(-1, description="read at most this many records per task (-1: all)")
    max_doc_chars: int = Field(
        50_000_000, gt=0, description="longer documents are dropped with reason too_long (protects memory)"
    )

    def text_and_id_keys(self) -> tuple[str, str]:
        """The fields of a parsed record that become the document's text and id (never metadata)."""
        return "text", "id"

    @field_validator("limit", mode="before")
    @classmethod
    def _limit_is_a_count(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v < -1:
            raise PydanticCustomError(
                "limit", "not a record count; give -1 (read everything) or N >= 0 records per task (--limit N)"
            )
        return v

    @model_validator(mode="after")
    def _registered_format(self) -> InputConfig:
        if "format" not in self.__dict__:
            return self  # a blank stand-in (model_construct) for a section already reported bad
        if self.format not in _READERS:
            raise ValueError(f"unknown format {self.format!r}; known formats: {_known()}")
        reader = _READERS.get(self.format)
        if not isinstance(self, reader.options_model):
            raise ValueError(f"format {self.format!r} takes {reader.options_model.__name__}, not {type(self).__name__}")
        return self


class FieldsInput(InputConfig):
    """Formats whose records are mappings of named fields (JSON objects, table rows)."""

    text_key: str = Field("text", description="field holding the document text")
    id_key: str = Field("id", description="field holding the document id (default: file/record)")

    def text_and_id_keys(self) -> tuple[str, str]:
        return self.text_key, self.id_key


class CompressedInput(InputConfig):
    """Formats read as a byte stream, which may be compressed as a whole."""

    compression: Literal["infer", "gzip", "zstd"] | None = Field(
        "infer", description="infer (from the file extension: .gz, .bz2, .xz, .zst), gzip, zstd or null (none)"
    )


# ---------------------------------------------------------------------------- the record loop


@dataclass(frozen=True)
class Skip:
    """What `Source.parse` returns for a record that gives no document.

    `bad` records are bad input: logged with file and record, fatal under `on_error: fail`. The
    others are ordinary content that is not a document (a WARC image, a blank line): only counted.
    """

    reason: str
    detail: str = ""
    bad: bool = True


class Source(Accounted, BaseDiskReader):
    """A registered input format's reader; subclasses implement `records` (and usually `parse`)."""

    type = "curate-reader"
    # set by register_reader
    input_format: ClassVar[str] = ""
    options_model: ClassVar[builtins.type[InputConfig]] = InputConfig
    # the file names this format reads when `input.glob` is unset (a folder of shards often holds a
    # README, a checksum list or another format's files); empty: every file
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: InputConfig) -> None:
        folder, glob = split_path(options.path, options.glob)
        text_key, id_key = options.text_and_id_keys()
        super().__init__(
            data_folder=folder, glob_pattern=glob, recursive=options.recursive, text_key=text_key, id_key=id_key
        )
        self.data_folder = in_order(self.data_folder)  # type: ignore[has-type]  # datatrove leaves it untyped
        self.options = options
        self.max_doc_chars = options.max_doc_chars
        # our own per-task limit: datatrove's stops *after* reading one record more than it yields,
        # which would count a record in that never comes out
        self.doc_limit = options.limit
        self.type_notes: dict[str, str] = {}  # column -> why its type is what `column_types` said (files disagreed)

    # -- what a format implements ------------------------------------------------------------------
    def records(self, filepath: str) -> Iterator[tuple[int, Any]]:
        """(position in the file, raw record) for each record of one file, in order. A raw record of None
        is an entry that is no record (a WARC request): it moves the position and is not counted.
        Raising one of `file_errors()` ends the file as one truncated / corrupt drop."""
        raise NotImplementedError

    def parse(self, raw: Any, record: int) -> Any:
        """A raw record -> its fields (a dict holding the text and id keys; any other field is metadata), or a
        `Skip` saying why it is no document. Runs after the record is counted in, so a file error raised
        here drops this record (`truncated_file`)."""
        return raw

    def file_errors(self) -> tuple[builtins.type[BaseException], ...]:
        """What reading a broken file raises (caught: the file ends there)."""
        return STREAM_ERRORS

    def file_error_reason(self, e: BaseException) -> str:
        return stream_error_reason(e)

    def column_types(self, names: list[str], sample_records: int) -> dict[str, pa.DataType]:
        """The Arrow type of these metadata fields, decided before the run; a name left out was never seen."""
        return {}

    def field_names(self, path: str, records: int) -> set[str] | None:
        """The field names of the first `records` records of one file (None: this format cannot say)."""
        return None

    # -- which files ----------------------------------------------------------------------------------
    def input_files(self) -> tuple[list[str], int]:
        """The files this reader reads (relative to `data_folder`, sorted) and how many others the folder
        holds that are skipped for their extension (only when `input.glob` is unset)."""
        if not self.data_folder.exists(""):
            return [], 0
        listed = self.data_folder.list_files(recursive=self.recursive, glob_pattern=self.glob_pattern)
        if self.glob_pattern or not self.extensions:
            return listed, 0
        kept = [f for f in listed if has_extension(f, self.extensions)]
        return kept, len(listed) - len(kept)

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        """datatrove's file loop over this format's files only (datatrove's own would take every file), each
        task a contiguous run of them (see core/shards.py)."""
        if data:
            yield from data
        files, _ = self.input_files()
        self._log_limit_scope(rank, world_size)
        for doc in self.read_files_shard(contiguous_share(sorted(files), rank, world_size)):
            self.update_doc_stats(doc)
            yield doc

    # -- the loop ------------------------------------------------------------------------------------
    def read_file(self, filepath: str) -> Iterator[Document]:
        where = self._where(filepath)
        record, pending = -1, False  # pending: this record is counted in but neither out nor dropped yet
        try:
            for record, raw in self.records(filepath):
                if raw is None:
                    continue
                if self._limit_reached():
                    return
                self.record_in()
                pending = True
                data = self.parse(raw, record)
                pending = False
                if isinstance(data, Skip):
                    if data.bad:
                        self.bad_record(where, record, data.reason, data.detail)
                    else:  # harmless: counted, never fatal, not logged
                        self._counts.dropped[data.reason] += 1
                    continue
                doc = self._document(data, filepath, record)
                if doc is not None:
                    self._counts.docs_out_hint += 1
                    yield doc
        except self.file_errors() as e:
            # what was read is kept; the record being read (or, between records, the rest of the file) is one drop
            if not pending:
                self.record_in()
                record += 1
            self.bad_record(where, record, self.file_error_reason(e), f"{type(e).__name__}: {e}")

    def _limit_reached(self) -> bool:
        return self.doc_limit != -1 and self._counts.docs_out_hint >= self.doc_limit

    def _where(self, path: str) -> str:
        """The full path of an input file, for messages (the reader works with paths relative to its folder)."""
        try:
            return self.data_folder.resolve_paths(path)
        except Exception:  # pragma: no cover - resolve_paths only fails on exotic filesystems
            return path

    def _document(self, data: Any, path: str, record: int) -> Document | None:
        if not isinstance(data, dict):
            self.bad_record(
                self._where(path), record, "not_an_object", f"expected a JSON object, got {type(data).__name__}"
            )
            return None
        text = data.pop(self.text_key, _MISSING)
        if text is _MISSING:
            keys = ", ".join(list(data)[:10])
            self.bad_record(
                self._where(path), record, "missing_text", f"no field {self.text_key!r}; fields are: {keys}"
            )
            return None
        if text is None:
            self.bad_record(self._where(path), record, "null_text", f"field {self.text_key!r} is null")
            return None
        if not isinstance(text, str):
            self.bad_record(
                self._where(path), record, "text_not_string", f"field {self.text_key!r} is a {type(text).__name__}"
            )
            return None
        self._counts.chars_in += len(text)
        if "\x00" in text:
            # NUL bytes break C-string based tools (fastText) and never carry meaning in web text
            text = text.replace("\x00", "")
            self.stat_update("nul_bytes_removed")
        full_path = self.data_folder.resolve_paths(path)
        doc_id = data.pop(self.id_key, None)
        meta = record_metadata(data)
        meta[SOURCE_FILE] = full_path
        meta[SOURCE_RECORD] = record
        doc = Document(text=text, id=str(doc_id) if doc_id is not None else f"{path}/{record}", metadata=meta)
        if not text.strip():
            self.drop(doc, "empty_text")
            return None
        if len(text) > self.max_doc_chars:
            self.drop(doc, "too_long")
            return None
        return doc

    def sample_files(self, n: int | None = None) -> list[str]:
        """The first `n` input files (all: None), relative to `data_folder`, for looking at the input before
        the run."""
        return self.input_files()[0][:n]


# what a whole-file compression adds to a name (`open_input` decompresses these under `infer`)
COMPRESSION_SUFFIXES = ("", ".gz", ".zst", ".zstd", ".bz2", ".xz")


def has_extension(name: str, extensions: Sequence[str]) -> bool:
    """`name` ends with one of `extensions`, alone or followed by a compression suffix (case ignored)."""
    low = name.lower()
    return any(low.endswith(ext + comp) for ext in extensions for comp in COMPRESSION_SUFFIXES)


def record_metadata(data: dict) -> dict:
    """The metadata of a record (text and id already taken out): its nested `metadata` object's fields,
    then every other top-level field (which wins on a name clash)."""
    metadata = data.pop("metadata", None)
    meta = dict(metadata) if isinstance(metadata, dict) else {}
    meta.update(data)
    return meta


# ---------------------------------------------------------------------------- the registry

_READERS: Registry[type[Source]] = Registry("reader format")
S = TypeVar("S", bound=type[Source])


def register_reader(format: str, options: type[InputConfig]) -> Callable[[S], S]:
    """Class decorator: `input.format: <format>` is read by this `Source` subclass, with `options` (a subclass
    of `InputConfig` adding the keys only this format has, or `InputConfig` itself) as its `input:` model."""

    def deco(cls: S) -> S:
        if not (isinstance(options, type) and issubclass(options, InputConfig)):
            raise TypeError(f"reader {format!r}: the options model must subclass InputConfig, got {options!r}")
        if not issubclass(cls, Source):
            raise TypeError(f"reader {format!r}: {cls!r} must subclass curate.pipeline.readers.Source")
        _READERS.add(format, cls)  # before the class is touched: a refused duplicate changes nothing
        cls.input_format, cls.options_model, cls.name = format, options, f"read {format}"
        return cls

    return deco


def reader_formats() -> list[str]:
    return sorted(_READERS.names())


def reader_class(format: str) -> type[Source]:
    if format not in _READERS:
        raise ConfigError(f"input.format: unknown format {format!r}; known formats: {_known()}")
    return _READERS.get(format)


def _known() -> str:
    return ", ".join(repr(f) for f in reader_formats())


def _owners(key: str) -> list[str]:
    return [f for f in reader_formats() if key in _READERS.get(f).options_model.model_fields]


def validate_input(raw: dict[str, Any]) -> InputConfig:
    """The `input:` mapping -> the options model of its `format`. ConfigError lists every problem, one line
    each: an unknown format lists the known ones, a key of another format names that format."""
    fmt = raw.get("format")
    if fmt is None:
        raise ConfigError(f"input.format: required key is missing (one of: {_known()})")
    if not isinstance(fmt, str) or fmt not in _READERS:
        raise ConfigError(f"input.format: unknown format {fmt!r}; known formats: {_known()}")
    model = _READERS.get(fmt).options_model
    problems, own = [], {}
    for key, value in raw.items():
        owners = _owners(key) if key not in model.model_fields else []
        if owners:
            which = f"format {owners[0]!r}" if len(owners) == 1 else "formats " + " and ".join(repr(o) for o in owners)
            problems.append(f"input.{key}: an option of {which}, not of {fmt!r}")
        else:
            own[key] = value
    try:
        options = model.model_validate(own)
    except ValidationError as e:
        problems += format_validation_error(e, model, "input")
    if problems:
        raise ConfigError(problems)
    return options


# ---------------------------------------------------------------------------- what the plan asks


def make_reader(cfg: InputConfig, on_error: str = "skip", limit: int | None = None) -> Source:
    reader = reader_class(cfg.format)(cfg)
    if limit is not None:
        reader.doc_limit = limit
    reader.configure(label="read", on_error=on_error)
    return reader


def list_input_files(cfg: InputConfig) -> list[str]:
    """Files the reader will see (local paths only: remote listing needs the network, done at run time)."""
    return input_files(cfg)[0]


def input_files(cfg: InputConfig) -> tuple[list[str], int]:
    """The files the reader will see (full paths) and how many were skipped for their extension."""
    reader = reader_class(cfg.format)(cfg)
    if not reader.data_folder.exists(""):
        raise ConfigError(f"input.path: {cfg.path!r} does not exist")
    files, skipped = reader.input_files()
    return [reader.data_folder.resolve_paths(p) for p in files], skipped


def skipped_files_note(cfg: InputConfig, skipped: int) -> str:
    """What `validate` and `plan` say about files left out for their extension ("" when none were)."""
    if not skipped:
        return ""
    exts = "/".join(reader_class(cfg.format).extensions)
    return (
        f"{skipped} file(s) under {cfg.path} skipped: not {exts} (optionally compressed); "
        "set input.glob to choose the files yourself"
    )


@dataclass
class ColumnTypes:
    """The type of each `output.metadata_columns` column, fixed before the run, and where it came from."""

    types: dict[str, pa.DataType | None]  # None: never seen in the input (written as null strings)
    notes: dict[str, str]  # column -> "declared", "files disagree: ..." (what `curate plan` prints)


def metadata_column_types(
    cfg: InputConfig,
    columns: Sequence[str] | Mapping[str, str | None],
    sample_records: int = TYPE_SAMPLE_RECORDS,
) -> dict[str, pa.DataType | None]:
    """The Arrow type of each `output.metadata_columns` column, decided before the run (see `input_column_types`)."""
    return input_column_types(cfg, columns, sample_records).types


def input_column_types(
    cfg: InputConfig,
    columns: Sequence[str] | Mapping[str, str | None],
    sample_records: int = TYPE_SAMPLE_RECORDS,
) -> ColumnTypes:
    """Each metadata column's type: the declared one (`{score: float64}`), else read from all of the input.

    Each format says how (its reader's `column_types`): Parquet from every file's schema (footers
    only), JSONL by pyarrow's inference over the first `sample_records` records of every file, WARC's
    `url` and `date` are strings; types that differ between files are widened or, when no type holds
    them all, written as JSON text with a note. A remote input is not opened before the run: its
    undeclared columns are strings. The text and id fields are taken by the reader and are never metadata.
    """
    key = _types_key(cfg, columns, sample_records)
    if key is not None and key in _TYPES_SEEN:
        return _TYPES_SEEN[key]
    got = _column_types(cfg, columns, sample_records)
    if key is not None:
        _TYPES_SEEN.clear()  # one input at a time: the last answer is the one asked for again
        _TYPES_SEEN[key] = got
    return got


# preflight and the plan ask in turn for the same input: it is read once while its files stay unchanged
_TYPES_SEEN: dict[tuple, ColumnTypes] = {}


def _types_key(cfg: InputConfig, columns: Sequence[str] | Mapping[str, str | None], records: int) -> tuple | None:
    import os

    if is_remote(cfg.path):
        return None
    try:
        files = input_files(cfg)[0]
        stats = tuple((f, s.st_size, s.st_mtime_ns) for f in files for s in [os.stat(f.removeprefix("file://"))])
    except (ConfigError, OSError):
        return None
    cols = tuple(columns.items()) if isinstance(columns, Mapping) else tuple(columns)
    return cfg.model_dump_json(), cols, records, stats


def _column_types(
    cfg: InputConfig, columns: Sequence[str] | Mapping[str, str | None], sample_records: int
) -> ColumnTypes:
    import pyarrow as pa

    declared = dict(columns) if isinstance(columns, Mapping) else dict.fromkeys(columns)
    types: dict[str, pa.DataType | None] = dict.fromkeys(declared)
    notes: dict[str, str] = {}
    for name, text in declared.items():
        if text is not None:
            types[name], notes[name] = parse_type(text), "declared"
    taken = cfg.text_and_id_keys()
    wanted = [n for n, t in types.items() if t is None and n not in taken]
    if wanted and is_remote(cfg.path):
        types.update(dict.fromkeys(wanted, pa.string()))
        notes.update(dict.fromkeys(wanted, "remote input, not read before the run: string (declare a type)"))
    elif wanted:
        reader = reader_class(cfg.format)(cfg)
        types.update(reader.column_types(wanted, sample_records))
        notes.update(reader.type_notes)
    return ColumnTypes(types, notes)


def input_field_names(cfg: InputConfig, records: int = 100) -> set[str] | None:
    """Field names of the input from the first `records` records of the first file and a few of every other,
    the text field left out.
    None: not known (a remote input is not opened before the run; the format cannot say)."""
    if is_remote(cfg.path):
        return None
    reader = reader_class(cfg.format)(cfg)
    fields: set[str] = set()
    for i, path in enumerate(reader.sample_files()):
        try:
            got = reader.field_names(path, records if i == 0 else min(records, _FIELD_SAMPLE_RECORDS))
        except Exception:  # an unreadable file is the reader's business (counted per record at run time)
            continue
        if got is None:
            return None
        fields |= got
    fields.discard(cfg.text_and_id_keys()[0])
    return fields
