"""Write a whole file so that a reader sees the old file, the new one, or none: never half of one.

Every file curate publishes outside datatrove's writers goes through `write_atomic`: stats, the run
record and resume state, the dataset card, Slurm's config copy and job list, the diff and report
pages, the refiner tools' JSON. The bytes go to a hidden `.NAME.partial` beside the target (the same
name `AtomicParquetWriter` uses, so `run.remove_stale_partials` cleans up after a killed writer) and are
moved over the target when complete: a rename on a local disk, the object store's move elsewhere.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from datatrove.data import Document
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.writers import ParquetWriter
from loguru import logger


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


def read_json(folder: DataFolderLike, name: str) -> Any:
    """A JSON file written with `write_json_atomic`; None when it is missing or not valid JSON."""
    df = get_datafolder(folder)
    if not df.isfile(name):
        return None
    with df.open(name, "rt") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None


def write_json_atomic(folder: DataFolderLike, name: str, value: Any, **dump_options: Any) -> str:
    return write_atomic(folder, name, json.dumps(value, indent=2, **dump_options))


class AtomicParquetWriter(ParquetWriter):
    """datatrove's ParquetWriter, but each file is written as `.NAME.partial` and renamed on close."""

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs: Any) -> str:
        name = super()._get_output_filename(document, rank, **kwargs)
        if rank == "XXXXX":  # datatrove asks for this name only as a per-file stats key, not to open a file
            return name
        return partial_name(name)

    _aborted = False

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        # a task that fails (or is closed before its input is exhausted) must not publish what it wrote so far
        self._aborted = exc_type is not None
        try:
            self.close()
        except Exception as e:
            if exc_type is None:
                raise
            # the task's own error is the one to report; this one only says the cleanup also failed
            logger.warning(f"{self.name}: closing the output of a failed task: {type(e).__name__}: {e}")
        finally:
            self._aborted = False

    def close_file(self, filename: str) -> None:
        parquet = self._writers.get(filename)
        try:
            # the last row group, the Parquet footer, the file itself: any of them may fail
            super().close_file(filename)
            open_files = self.output_mg.get_open_files()
            if filename in open_files:
                # flush (on object stores: upload) the bytes before the rename, not after it
                self.output_mg.pop(filename).close()
        except BaseException:
            if parquet is not None:
                parquet.is_open = False  # else pyarrow's __del__ writes the footer again, into a closed file
            self._discard(filename)
            raise
        if self._aborted:
            self.output_folder.rm(filename)
            return
        folder, _, base = filename.rpartition("/")
        final = base[1 : -len(".partial")]
        self.output_folder.mv(filename, f"{folder}/{final}" if folder else final)

    def _discard(self, filename: str) -> None:
        """Close what is still open of a file whose close failed, and remove it (it is no output)."""
        self._batches.pop(filename, None)
        self._writers.pop(filename, None)
        try:
            self.output_mg.pop(filename).close()
        except Exception:  # noqa: S110 - already closed, or broken: the rm below is what matters
            pass
        try:
            if self.output_folder.exists(filename):
                self.output_folder.rm(filename)
        except Exception as e:
            logger.warning(f"{self.name}: could not remove {self.output_folder.resolve_paths(filename)}: {e}")


__all__ = ["AtomicParquetWriter", "partial_name", "write_atomic", "write_file_atomic", "write_json_atomic"]
