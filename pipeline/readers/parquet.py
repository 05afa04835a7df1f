"""parquet: Parquet files, one document per row (nested `metadata` struct fields become metadata too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from .base import FieldsInput, Source, register_reader
from .column_types import merge_types, settle_type

if TYPE_CHECKING:
    import pyarrow as pa


class ParquetOptions(FieldsInput):
    """Parquet input: the text and id columns, and how many rows are decoded at a time."""

    batch_size: int = Field(1000, gt=0, description="rows decoded at a time (more: faster, more memory)")


@register_reader("parquet", ParquetOptions)
class ParquetSource(Source):
    options: ParquetOptions
    extensions = (".parquet",)

    def records(self, filepath: str) -> Iterator[tuple[int, Any]]:
        import pyarrow.parquet as pq

        record = -1
        with self.data_folder.open(filepath, "rb") as f, pq.ParquetFile(f) as pqf:
            for batch in pqf.iter_batches(batch_size=self.options.batch_size):
                for row in batch.to_pylist():
                    record += 1
                    yield record, row

    def file_errors(self) -> tuple[type[BaseException], ...]:
        import pyarrow as pa

        return (pa.ArrowException, OSError)

    def file_error_reason(self, e: BaseException) -> str:
        return "corrupt_file"

    def column_types(self, names: list[str], sample_records: int) -> dict[str, pa.DataType]:
        """Every readable file's schema (footers only, no data): a top-level column, else a field of a
        `metadata` struct (the reader flattens it); types that differ between files are merged
        (`merge_types`, noted in `type_notes`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        per_file: dict[str, dict[str, pa.DataType]] = {n: {} for n in names}
        for path in self.sample_files():
            try:
                with self.data_folder.open(path, "rb") as f:
                    schema = pq.read_schema(f)
            except (pa.ArrowException, OSError):
                continue  # a corrupt file: the reader reports it at run time
            nested = schema.field("metadata").type if "metadata" in schema.names else None
            for n in names:
                if n in schema.names and n != "metadata":
                    per_file[n][self._where(path)] = settle_type(schema.field(n).type)
                elif nested is not None and pa.types.is_struct(nested) and nested.get_field_index(n) >= 0:
                    per_file[n][self._where(path)] = settle_type(nested.field(n).type)
        out: dict[str, pa.DataType] = {}
        for n, types in per_file.items():
            if types:
                out[n], note = merge_types(types)
                if note:
                    self.type_notes[n] = note
        return out

    def field_names(self, path: str, records: int) -> set[str] | None:
        import pyarrow.parquet as pq

        with self.data_folder.open(path, "rb") as f:
            return set(pq.read_schema(f).names)
