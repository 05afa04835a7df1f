"""Reading benchmark (eval) sets for decontamination: JSON Lines or Parquet, local or any fsspec URL.

The dedup package may not import curate.pipeline (its readers), so this reads the two formats directly:
orjson line by line (compression inferred from the name: .gz, .zst, ...) and pyarrow for Parquet. An
item's text is its `text_keys` fields joined by a line break; a list field (e.g. multiple-choice answers)
contributes each element. A missing key or a broken line is an `InputError` naming the file and record:
a benchmark file that does not read as configured must stop the run, never shrink the index silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import fsspec

from curate.core.errors import InputError


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(_field_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(_field_text(v) for v in value.values())
    return str(value)


def item_text(record: dict[str, Any], keys: Sequence[str], path: str, index: int) -> str:
    """The text of one eval item: its `keys` fields in order, joined by line breaks."""
    missing = [k for k in keys if k not in record]
    if missing:
        raise InputError(path, index, "missing_field", f"no field {missing[0]!r} (fields: {sorted(record)[:10]})")
    return "\n".join(_field_text(record[k]) for k in keys)


def _jsonl(path: str, keys: Sequence[str]) -> Iterator[str]:
    import orjson

    with fsspec.open(path, "rb", compression="infer") as fh:
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise InputError(path, i, "bad_json", str(e)) from None
            if not isinstance(record, dict):
                raise InputError(path, i, "not_an_object", type(record).__name__)
            yield item_text(record, keys, path, i)


def _parquet(path: str, keys: Sequence[str]) -> Iterator[str]:
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as fh, pq.ParquetFile(fh) as pf:
        names = set(pf.schema_arrow.names)
        missing = [k for k in keys if k not in names]
        if missing:
            raise InputError(path, None, "missing_field", f"no column {missing[0]!r} (columns: {sorted(names)[:10]})")
        i = 0
        for batch in pf.iter_batches(columns=list(dict.fromkeys(keys))):
            for record in batch.to_pylist():
                yield item_text(record, keys, path, i)
                i += 1


def read_items(path: str, fmt: str, keys: Sequence[str]) -> list[str]:
    """Every item's text of one eval set file."""
    reader = _jsonl if fmt == "jsonl" else _parquet
    try:
        return list(reader(path, keys))
    except FileNotFoundError:
        raise InputError(path, None, "not_found", "the eval set file does not exist") from None
