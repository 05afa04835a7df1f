"""jsonl: JSON Lines, one JSON object per line (`.jsonl`, `.json.gz`, `.jsonl.zst`, ...)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .base import CompressedInput, FieldsInput, Skip, Source, record_metadata, register_reader
from .column_types import infer_type, merge_types
from .files import STREAM_ERRORS, open_input

if TYPE_CHECKING:
    import pyarrow as pa

_MISSING = object()


class JsonlOptions(FieldsInput, CompressedInput):
    """JSON Lines input: the text and id fields, and the compression of the files."""


@register_reader("jsonl", JsonlOptions)
class JsonlSource(Source):
    options: JsonlOptions
    extensions = (".jsonl", ".json", ".ndjson")

    def records(self, filepath: str) -> Iterator[tuple[int, Any]]:
        with open_input(self.data_folder, filepath, self.options.compression) as f:
            yield from enumerate(f)

    def parse(self, raw: Any, record: int) -> Any:
        import orjson

        line: bytes = raw
        if record == 0 and line.startswith(codecs.BOM_UTF8):
            # Windows tools start UTF-8 files with a BOM; orjson rejects it (the first record was lost)
            line = line[len(codecs.BOM_UTF8) :]
            self.stat_update("utf8_bom_removed")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            return Skip("invalid_utf8", f"byte {e.start}: {e.reason}")
        if not line.strip():
            return Skip("blank_line", bad=False)  # an editor's trailing empty line
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError as e:
            return Skip("bad_json", str(e))

    def column_types(self, names: list[str], sample_records: int) -> dict[str, pa.DataType]:
        """pyarrow's inference over the first `sample_records` records of every file, per file, then merged
        (`merge_types`): a field that only later files hold gets its type from them. Values of no common
        type make the column a string, noted in `type_notes` (a JSON string that looks like a timestamp
        stays a string: JSON has none)."""
        per_file: dict[str, dict[str, pa.DataType]] = {n: {} for n in names}
        seen: set[str] = set()  # present in some record, if only as null
        for path in self.sample_files():
            values: dict[str, list] = {n: [] for n in names}
            for data in self._sample([path], sample_records):
                meta = record_metadata(data)
                for n in names:
                    v = meta.get(n, _MISSING)
                    if v is not _MISSING:
                        seen.add(n)
                        if v is not None:
                            values[n].append(v)
            for n, vs in values.items():
                if vs:  # a file holding only nulls says nothing about the type
                    per_file[n][self._where(path)] = infer_type(vs)
        out: dict[str, pa.DataType] = {}
        for n in seen:
            out[n], note = merge_types(per_file[n])
            if note:
                self.type_notes[n] = note
        return out

    def field_names(self, path: str, records: int) -> set[str] | None:
        fields: set[str] = set()
        for data in self._sample([path], records):
            fields.update(data)
            if isinstance(data.get("metadata"), dict):
                fields.update(data["metadata"])
        return fields

    def _sample(self, files: list[str], limit: int) -> Iterator[dict]:
        """The first `limit` records that are JSON objects; bad lines and broken files are passed over (the
        reader counts them at run time)."""
        import orjson

        count = 0
        for path in files:
            try:
                with open_input(self.data_folder, path, self.options.compression) as f:
                    for line in f:
                        if count >= limit:
                            return
                        try:
                            data = orjson.loads(
                                line[len(codecs.BOM_UTF8) :] if line.startswith(codecs.BOM_UTF8) else line
                            )
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(data, dict):
                            count += 1
                            yield data
            except STREAM_ERRORS:
                pass  # what was read counts
