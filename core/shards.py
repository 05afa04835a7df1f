"""Which input files a task reads: a contiguous run of the sorted file list, not every k-th file.

datatrove gives task r the files r, r+k, r+2k, ... With contiguous runs instead, the order of
(task, position in task) equals the order of (file, record) over the whole input, so "the first
copy" of exact-document and MinHash dedup (the lowest task, then the earliest document) is the same
document whether the input was read by 1 task or by 1,000: the dataset does not depend on the
task count.
"""

from __future__ import annotations

from typing import Any

from datatrove.io import DataFolder


def contiguous_share(files: list[str], rank: int, world_size: int) -> list[str]:
    """Task `rank`'s files: the rank-th of `world_size` near-equal contiguous runs (sizes differ by at most 1)."""
    n = len(files)
    return files[rank * n // world_size : (rank + 1) * n // world_size]


class InOrderFolder(DataFolder):
    """A DataFolder whose `get_shard` hands out contiguous runs of the sorted file list."""

    def get_shard(self, rank: int, world_size: int, **kwargs: Any) -> list[str]:
        # never None (datatrove's "No files found" error): an empty handoff, from a job that dropped every
        # document, is a normal case and the task reads nothing
        return contiguous_share(sorted(self.list_files(**kwargs)), rank, world_size)


def in_order(folder: DataFolder) -> InOrderFolder:
    """The same folder (path, filesystem, options) sharded in file order."""
    if isinstance(folder, InOrderFolder):
        return folder
    return InOrderFolder(folder.path, fs=folder.fs, auto_mkdir=folder.auto_mkdir)
