"""Write a whole file so that a reader sees the old file, the new one, or none: never half of one.

Every file curate publishes outside datatrove's writers goes through `write_atomic`: stats, the run
record and resume state, the dataset card, Slurm's config copy and job list, the diff and report
pages, the refiner tools' JSON. The bytes go to a hidden `.NAME.partial` beside the target (the same
name `_AtomicParquetWriter` uses, so `run.remove_stale_partials` cleans up after a killed writer) and are
moved over the target when complete: a rename on a local disk, the object store's move elsewhere.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from datatrove.io import DataFolderLike, get_datafolder


def partial_name(name: str) -> str:
    """`a/b/NAME` -> `a/b/.NAME.partial`: hidden, so no glob of the published files matches it."""
    folder, base = posixpath.split(name)
    return posixpath.join(folder, f".{base}.partial")


def write_atomic(folder: DataFolderLike, name: str, data: str | bytes) -> str:
    """Write `data` to `folder/name` atomically; returns the full path written."""
    df = get_datafolder(folder)
    tmp = partial_name(name)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with df.open(tmp, "wb") as f:
            f.write(payload)
        df.mv(tmp, name)
    except BaseException:
        if df.exists(tmp):
            df.rm(tmp)
        raise
    return df.resolve_paths(name)


def write_file_atomic(path: str, data: str | bytes) -> str:
    """`write_atomic` for a path given whole (a local file or a URL)."""
    folder, name = posixpath.split(str(path))
    return write_atomic(folder or ".", name, data)


def write_json_atomic(folder: DataFolderLike, name: str, value: Any, **dump_options: Any) -> str:
    return write_atomic(folder, name, json.dumps(value, indent=2, **dump_options))


__all__ = ["partial_name", "write_atomic", "write_file_atomic", "write_json_atomic"]
