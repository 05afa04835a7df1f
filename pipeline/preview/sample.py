"""Draw a seeded sample of a config's input from across all its files, reading only what it needs.

- uncompressed JSON Lines: random byte offsets, each resynced to the next line start (one seek and a
  line read per document; a line is drawn with probability proportional to the length of the line
  before it, which is independent of its own content);
- Parquet: whole row groups picked at random (footers give the exact row count), rows drawn from them;
- anything else (compressed JSON Lines, WARC, ...): whole files in random order, since a compressed
  stream cannot be entered in the middle.

The sample is written in the input's own format, so the config's `input:` section reads it unchanged.
Documents are kept in one shuffled order: a prefix of it is a smaller sample of the same draw, which is
what the dedup fit (project.py) needs.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np

from curate.core.errors import ConfigError

from ..readers import reader_class

# the document count of uncompressed JSON Lines: newlines in this many random blocks of BLOCK bytes
DENSITY_BLOCKS = 64
BLOCK = 1 << 16
# an input smaller than this has its newlines counted whole (a second's read), not estimated
COUNT_WHOLE_BYTES = 64 << 20
# whole-file formats read files until they hold this many times the documents wanted (spread across files)
WHOLE_FILE_SPREAD = 4
# ... and at least this many files (all, when there are fewer)
WHOLE_FILE_MIN = 8


@dataclass
class InputListing:
    """The input's files (relative to its folder) and their sizes in bytes."""

    folder: Any  # datatrove DataFolder
    files: list[str]
    sizes: list[int]

    @property
    def total_bytes(self) -> int:
        return int(sum(self.sizes))


@dataclass
class Sample:
    """What was drawn: `units` in shuffled order (raw JSON lines, or one pyarrow table of rows, or whole files)."""

    kind: str  # "lines" | "rows" | "files"
    method: str  # how it was read, in words
    units: Any
    input_files: int
    input_bytes: int
    bytes_read: int
    est_total_docs: float | None  # None: known only after the preview's reader counted the sample
    notes: list[str] = field(default_factory=list)
    file_bytes: list[int] = field(default_factory=list)  # kind "files": each sampled file's size

    @property
    def size(self) -> int:
        return self.units.num_rows if self.kind == "rows" else len(self.units)


def list_input(input_cfg: Any) -> InputListing:
    """Every input file with its size (fsspec `info`: local and remote alike)."""
    reader = reader_class(input_cfg.format)(input_cfg)
    folder = reader.data_folder
    if not folder.exists(""):
        raise ConfigError(f"input.path: {input_cfg.path!r} does not exist")
    files, _ = reader.input_files()
    if not files:
        raise ConfigError(f"input.path: no {input_cfg.format} files under {input_cfg.path!r} to sample")
    sizes = [int(folder.info(f).get("size") or 0) for f in files]
    return InputListing(folder, sorted(files), [s for _, s in sorted(zip(files, sizes, strict=True))])


def _compression(input_cfg: Any, path: str) -> str | None:
    codec = getattr(input_cfg, "compression", None)
    return fsspec.utils.infer_compression(path) if codec == "infer" else codec


def draw_sample(
    input_cfg: Any, docs: int | None, fraction: float | None, seed: int, count_whole_below: int = COUNT_WHOLE_BYTES
) -> Sample:
    """Draw `docs` documents, or `fraction` of them, from across every input file."""
    if (docs is None) == (fraction is None):
        raise ConfigError("preview: give --docs N or --fraction F (one of them)")
    if docs is not None and docs < 1:
        raise ConfigError(f"--docs: must be >= 1, got {docs}")
    if fraction is not None and not 0 < fraction <= 1:
        raise ConfigError(f"--fraction: must be in (0, 1], got {fraction}")
    listing = list_input(input_cfg)
    rng = np.random.default_rng(seed)
    if input_cfg.format == "parquet":
        return _parquet_rows(listing, docs, fraction, rng)
    if input_cfg.format == "jsonl":
        if all(_compression(input_cfg, f) is None for f in listing.files):
            return _jsonl_ranges(listing, docs, fraction, rng, count_whole_below)
        return _jsonl_whole(listing, input_cfg, docs, fraction, rng)
    return _whole_files(listing, docs, fraction, rng, input_cfg.format)


# ---------------------------------------------------------------------------- JSON Lines, byte ranges


def _line_at(f: Any, offset: int, size: int) -> tuple[int, bytes]:
    """The first whole line starting at or after `offset` (wrapping to the file's start at its end)."""
    if offset > 0:
        f.seek(offset - 1)
        f.readline()  # the rest of the line the offset fell in (just b"\n" when it fell on a line start)
    start = f.tell() if offset > 0 else 0
    if start >= size:
        start = 0
    f.seek(start)
    return start, f.readline()


def _draw_lines(listing: InputListing, n: int, rng: np.random.Generator) -> tuple[list[bytes], int]:
    """n distinct lines, files chosen in proportion to their bytes; returns the lines and the bytes read."""
    sizes = np.array(listing.sizes, dtype=float)
    if sizes.sum() == 0:
        return [], 0
    seen: set[tuple[int, int]] = set()
    lines: list[bytes] = []
    read = 0
    for _round in range(6):  # collisions (two offsets in one line) are topped up, a few rounds at most
        want = n - len(lines)
        if want <= 0:
            break
        per_file = rng.multinomial(want, sizes / sizes.sum())
        for i, k in enumerate(per_file):
            if not k:
                continue
            with listing.folder.open(listing.files[i], "rb") as f:
                for off in np.sort(rng.integers(0, listing.sizes[i], size=int(k))):
                    start, line = _line_at(f, int(off), listing.sizes[i])
                    read += len(line)
                    if (i, start) in seen or not line.strip():
                        continue
                    seen.add((i, start))
                    lines.append(line if line.endswith(b"\n") else line + b"\n")
    order = rng.permutation(len(lines))
    return [lines[j] for j in order], read


def _count_all(listing: InputListing) -> float:
    newlines = 0
    for path in listing.files:
        with listing.folder.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                newlines += chunk.count(b"\n")
    return newlines / max(1, listing.total_bytes)


def _lines_per_byte(listing: InputListing, rng: np.random.Generator, count_whole_below: int) -> tuple[float, int]:
    """Newlines per byte in random blocks (many lines each: far steadier than a mean of sampled line lengths,
    whose long tail makes a 100-line mean swing by 15 %); an input under `count_whole_below` bytes is counted
    whole (a block of 64 KiB holds ~30 long web documents: 64 of them on a small input swing by 10 %).
    Returns it and the bytes read."""
    sizes = np.array(listing.sizes, dtype=float)
    if sizes.sum() <= count_whole_below:
        return _count_all(listing), listing.total_bytes
    block = BLOCK
    newlines, read = 0, 0
    for i, k in enumerate(rng.multinomial(DENSITY_BLOCKS, sizes / sizes.sum())):
        if not k:
            continue
        size = listing.sizes[i]
        with listing.folder.open(listing.files[i], "rb") as f:
            if size <= k * block:
                data = f.read()
                newlines, read = newlines + data.count(b"\n"), read + len(data)
                continue
            for off in rng.integers(0, size - block, size=int(k)):
                f.seek(int(off))
                data = f.read(block)
                newlines, read = newlines + data.count(b"\n"), read + len(data)
    return (newlines / read if read else 0.0), read


def _jsonl_ranges(
    listing: InputListing, docs: int | None, fraction: float | None, rng: np.random.Generator, count_whole_below: int
) -> Sample:
    density, read = _lines_per_byte(listing, rng, count_whole_below)
    est = density * listing.total_bytes
    if est < 1:
        raise ConfigError("preview: the input holds no documents to sample")
    n = docs if docs is not None else max(1, round(est * (fraction or 0)))
    lines, more = _draw_lines(listing, min(n, int(est)), rng)
    return Sample(
        "lines",
        f"byte ranges of {len(listing.files)} uncompressed JSON Lines file(s): a random offset per document, "
        "resynced to the next line",
        lines[:n],
        len(listing.files),
        listing.total_bytes,
        read + more,
        est,
    )


# ---------------------------------------------------------------------------- whole files


def _jsonl_whole(
    listing: InputListing, input_cfg: Any, docs: int | None, fraction: float | None, rng: np.random.Generator
) -> Sample:
    from ..readers import open_input

    lines: list[bytes] = []
    read_bytes, files_read = 0, 0
    n = docs or 0
    for i in rng.permutation(len(listing.files)):
        with open_input(listing.folder, listing.files[int(i)], input_cfg.compression) as f:
            lines.extend(x if x.endswith(b"\n") else x + b"\n" for x in f if x.strip())
        read_bytes += listing.sizes[int(i)]
        files_read += 1
        est = len(lines) / max(read_bytes, 1) * listing.total_bytes
        n = docs if docs is not None else max(1, round(est * (fraction or 0)))
        if len(lines) >= WHOLE_FILE_SPREAD * n and files_read >= WHOLE_FILE_MIN:
            break
    est = len(lines) / max(read_bytes, 1) * listing.total_bytes
    chosen = rng.permutation(len(lines))[:n]
    notes = (
        []
        if files_read == len(listing.files)
        else [
            f"compressed input is read as whole files: {files_read} of {len(listing.files)} file(s) read, "
            "the sample comes from those"
        ]
    )
    return Sample(
        "lines",
        f"whole compressed JSON Lines files ({files_read} of {len(listing.files)}), documents drawn from them",
        [lines[int(j)] for j in chosen],
        len(listing.files),
        listing.total_bytes,
        read_bytes,
        est,
        notes,
    )


def _whole_files(
    listing: InputListing, docs: int | None, fraction: float | None, rng: np.random.Generator, fmt: str
) -> Sample:
    if fraction is None:
        raise ConfigError(
            f"preview: {fmt} input is sampled as whole files (its records cannot be reached without reading the "
            "file); give --fraction F instead of --docs"
        )
    order = [int(i) for i in rng.permutation(len(listing.files))]
    chosen: list[int] = []
    for i in order:
        if chosen and sum(listing.sizes[j] for j in chosen) >= fraction * listing.total_bytes:
            break
        chosen.append(i)
    files = [listing.folder.resolve_paths(listing.files[i]) for i in chosen]
    return Sample(
        "files",
        f"whole {fmt} files ({len(chosen)} of {len(listing.files)}) picked at random",
        files,
        len(listing.files),
        listing.total_bytes,
        sum(listing.sizes[i] for i in chosen),
        None,
        file_bytes=[listing.sizes[i] for i in chosen],
    )


# ---------------------------------------------------------------------------- Parquet row groups


def _parquet_rows(listing: InputListing, docs: int | None, fraction: float | None, rng: np.random.Generator) -> Sample:
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups: list[tuple[int, int, int]] = []  # (file, row group, rows)
    for i, path in enumerate(listing.files):
        with listing.folder.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        groups += [(i, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    total = sum(g[2] for g in groups)
    if total == 0:
        raise ConfigError("preview: the input holds no documents to sample")
    n = min(total, docs if docs is not None else max(1, round(total * (fraction or 0))))
    tables, rows, read = [], 0, 0
    for j in rng.permutation(len(groups)):
        i, g, k = groups[int(j)]
        if rows >= n:
            break
        with listing.folder.open(listing.files[i], "rb") as f:
            tables.append(pq.ParquetFile(f).read_row_group(g))
        rows += k
        read += tables[-1].nbytes
    table = pa.concat_tables(tables, promote_options="permissive")  # files may differ (string vs large_string)
    table = table.take(pa.array(rng.permutation(table.num_rows)[:n]))
    return Sample(
        "rows",
        f"{len(tables)} of {len(groups)} Parquet row group(s) read at random, rows drawn from them",
        table,
        len(listing.files),
        listing.total_bytes,
        read,
        float(total),
    )


# ---------------------------------------------------------------------------- writing


def write_sample(sample: Sample, folder: str, n: int | None = None, fmt: str = "jsonl") -> str:
    """The first n units (all: None) as a folder the config's reader reads; returns the folder."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    units = sample.units if n is None else (sample.units.slice(0, n) if sample.kind == "rows" else sample.units[:n])
    if sample.kind == "lines":
        with open(posixpath.join(folder, "sample.jsonl"), "wb") as f:
            f.writelines(units)
    elif sample.kind == "rows":
        import pyarrow.parquet as pq

        pq.write_table(units, posixpath.join(folder, "sample.parquet"))
    else:
        for k, path in enumerate(units):
            name = f"{k:05d}_{posixpath.basename(path)}"
            with fsspec.open(path, "rb") as src, open(posixpath.join(folder, name), "wb") as dst:
                shutil.copyfileobj(src, dst)
    return folder
