"""Input: one module per format (jsonl, parquet, warc), each registered with its own `input:` options.

`base.py` holds what they share: the `input:` keys every format has (`InputConfig`), the one record
loop with its accounting and bad-input handling (`Source`), and the registry (`register_reader`).
A new format is one module like `jsonl.py`; importing it registers it.
"""

from . import jsonl, parquet, warc  # noqa: F401  (registers the built-in formats)
from .base import (
    SOURCE_FILE,
    SOURCE_RECORD,
    TYPE_SAMPLE_RECORDS,
    ColumnTypes,
    CompressedInput,
    FieldsInput,
    InputConfig,
    Skip,
    Source,
    has_extension,
    input_column_types,
    input_field_names,
    input_files,
    list_input_files,
    make_reader,
    metadata_column_types,
    reader_class,
    reader_formats,
    record_metadata,
    register_reader,
    skipped_files_note,
    validate_input,
)
from .column_types import infer_type, merge_types, parse_type, settle_type
from .files import is_remote, open_input, split_path
from .jsonl import JsonlOptions, JsonlSource
from .parquet import ParquetOptions, ParquetSource
from .warc import WarcOptions, WarcSource, warc_record_payload

__all__ = [
    "SOURCE_FILE",
    "SOURCE_RECORD",
    "TYPE_SAMPLE_RECORDS",
    "ColumnTypes",
    "CompressedInput",
    "FieldsInput",
    "InputConfig",
    "JsonlOptions",
    "JsonlSource",
    "ParquetOptions",
    "ParquetSource",
    "Skip",
    "Source",
    "WarcOptions",
    "WarcSource",
    "infer_type",
    "has_extension",
    "input_column_types",
    "input_field_names",
    "input_files",
    "is_remote",
    "list_input_files",
    "make_reader",
    "merge_types",
    "metadata_column_types",
    "open_input",
    "parse_type",
    "reader_class",
    "reader_formats",
    "record_metadata",
    "register_reader",
    "settle_type",
    "skipped_files_note",
    "split_path",
    "validate_input",
    "warc_record_payload",
]
