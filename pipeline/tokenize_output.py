"""Token shards a trainer reads directly: an output folder's `data/*.parquet` tokenized into
`OUTPUT/tokens/FORMAT/`, for a run's `output.tokenize` (jobs after the writer) and `curate tokenize`.

Both formats are written by datatrove's own writers, so the files are what its readers and
Megatron's expect byte for byte:
- megatron: `MegatronDocumentTokenizer`, one `NNNNN_tokens.bin/.idx` pair per task (megatron-core's
  `IndexedDataset`; pass every prefix to `--data-path`). Token dtype uint16, or int32 above 65,536 ids
  (the .idx dtype code Megatron's own `DType.optimal_dtype` picks). No merge: Megatron blends prefixes.
- datatrove: `DocumentTokenizer` per task into the work folder, then `DocumentTokenizerMerger` (one
  task) into `tokens/datatrove/NNN_tokens.ds` + `.ds.index` + `.ds.metadata` (uint16 or uint32 ids),
  the layout `DatatroveFolderDataset` reads; with `shuffle`, documents are shuffled in each task and
  again across tasks by the merge, because that reader reads sequentially.

Documents are read from data/ with their text as written, empty ones included (datatrove's readers
skip empty texts; here every kept row is one document, so counts match the data's row count).
Token counts come from the written index files, not from step stats, so they are right after a
resumed run, a Slurm run or `curate tokenize` alike.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseDiskReader

from curate.core.errors import ConfigError
from curate.core.model_refs import resolve_model_file
from curate.core.stage_api import PreflightContext

from .config import TokenizeConfig

TOKENS_DIR = "tokens"
TASK_FILES = "tokens"  # datatrove's per-task and merged file stem
BATCH_SIZE = 1000  # documents per encode_batch: large enough for the Rust threads, small in memory

# megatron-core's DType codes (megatron/core/datasets/indexed_dataset.py), for reading counts back
_MEGATRON_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}
_MEGATRON_HEADER = b"MMIDIDX\x00\x00"


def tokens_dir(output_dir: str, fmt: str) -> str:
    """Where a format's shards go: beside data/, never inside it (a Parquet glob must not see them)."""
    return posixpath.join(output_dir.rstrip("/"), TOKENS_DIR, fmt)


class DataTextReader(BaseDiskReader):
    """Reads `id` and `text` of data/*.parquet; unlike datatrove's ParquetReader it keeps empty texts,
    so the token shards hold exactly one document per row."""

    name = "tokenize read"

    def __init__(self, data_folder: str, batch_size: int = BATCH_SIZE) -> None:
        super().__init__(data_folder, glob_pattern="*.parquet", add_file_path=False)
        self.batch_size = batch_size

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        """A run that kept no document has no data/ yet (its empty file is written when the run ends):
        nothing to tokenize, where datatrove's reader would fail every task."""
        if self.data_folder.exists(""):
            yield from super().run(data, rank, world_size)

    def read_file(self, filepath: str) -> Iterator[Document]:
        import pyarrow.parquet as pq

        with self.data_folder.open(filepath, "rb") as f, pq.ParquetFile(f) as pqf:
            for batch in pqf.iter_batches(batch_size=self.batch_size, columns=["id", "text"]):
                ids, texts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                for doc_id, text in zip(ids, texts):
                    yield Document(text=text or "", id=str(doc_id))


@dataclass
class TokenJob:
    """A job of the tokenization, for plan.py's `Job` (this module cannot import plan: plan imports it)."""

    name: str
    steps: list[PipelineStep]
    tasks: int
    writes: list[str]  # what a redo must clear first (resume.py), e.g. shards of a smaller task count
    fingerprint: str  # changes with the options, so a new tokenizer or format redoes the job on resume


def tokenize_jobs(opts: TokenizeConfig, output_dir: str, work_dir: str, tasks: int) -> list[TokenJob]:
    """The jobs that write `opts.format` shards from OUTPUT/data/."""
    data = posixpath.join(output_dir.rstrip("/"), "data")
    target = tokens_dir(output_dir, opts.format)
    digest = "output.tokenize@" + hashlib.sha256(opts.model_dump_json().encode()).hexdigest()[:12]
    if opts.format == "megatron":
        from datatrove.pipeline.tokens import MegatronDocumentTokenizer

        writer = MegatronDocumentTokenizer(
            target,
            tokenizer_name_or_path=opts.tokenizer,
            eos_token=opts.eos,  # None: no EOS post-processor, the tokenizer's own applies
            batch_size=BATCH_SIZE,
        )
        return [TokenJob("tokenize", _labelled([DataTextReader(data), writer]), tasks, [target], digest)]
    from datatrove.pipeline.tokens import DocumentTokenizer, DocumentTokenizerMerger

    scratch = posixpath.join(work_dir.rstrip("/"), TOKENS_DIR, "datatrove")
    per_task = DocumentTokenizer(
        scratch,
        tokenizer_name_or_path=opts.tokenizer,
        save_filename=TASK_FILES,
        eos_token=opts.eos,
        batch_size=BATCH_SIZE,
        shuffle_documents=opts.shuffle,
        seed=opts.seed,
    )
    merge = DocumentTokenizerMerger(scratch, target, TASK_FILES, shuffle=opts.shuffle, seed=opts.seed, progress=False)
    return [
        TokenJob("tokenize", _labelled([DataTextReader(data), per_task]), tasks, [scratch], digest),
        TokenJob("tokenize_merge", _labelled([merge]), 1, [target], digest),
    ]


def _labelled(steps: list[Any]) -> list[Any]:
    """Names shown by `curate plan` and in stats.json (datatrove's own names are emoji)."""
    names = {"DataTextReader": "tokenize read", "DocumentTokenizerMerger": "tokenize merge"}
    for s in steps:
        s.label = names.get(type(s).__name__, "tokenize write")
    return steps


# ---------------------------------------------------------------------------- tokenizer checks


def prepare_tokenize(opts: TokenizeConfig, pf: PreflightContext) -> None:
    """Before a run (preflight): `opts.tokenizer` becomes the local tokenizer.json, a hub id resolved once."""
    path = pf.tokenizer_file(opts.tokenizer, "output.tokenize.tokenizer")
    if path is None or not pf.is_local(path):
        return
    opts.tokenizer = path
    problem = eos_problem(opts)
    if problem:
        pf.problem(problem, "output.tokenize.eos")


def eos_problem(opts: TokenizeConfig) -> str | None:
    """The EOS token must be in the vocabulary: datatrove would put the id None in its template and
    fail in every task, after the stages ran."""
    if opts.eos is None:
        return None
    from tokenizers import Tokenizer

    if Tokenizer.from_file(opts.tokenizer).token_to_id(opts.eos) is None:
        return f"eos {opts.eos!r} is not a token of {opts.tokenizer}; give the tokenizer's EOS text (e.g. </s>) or null"
    return None


def resolve_tokenizer(opts: TokenizeConfig) -> TokenizeConfig:
    """For `curate tokenize` and `curate subset`: the local file (downloaded once for a hub id), checked."""
    opts.tokenizer = resolve_model_file(opts.tokenizer, "tokenizer.json", (".json",), "tokenizer")
    problem = eos_problem(opts)
    if problem:
        raise ConfigError(f"--eos: {problem}")
    return opts


# ---------------------------------------------------------------------------- counts


def token_counts(output_dir: str, opts: TokenizeConfig) -> dict[str, Any]:
    """Documents and tokens per shard file and in total, read from the written index files."""
    folder = get_datafolder(tokens_dir(output_dir, opts.format))
    counter = _megatron_counts if opts.format == "megatron" else _datatrove_counts
    suffix = ".idx" if opts.format == "megatron" else ".ds.index"
    files: dict[str, dict[str, int]] = {}
    dtype = ""
    if folder.exists(""):
        for name in sorted(f for f in folder.list_files() if f.endswith(suffix)):
            with folder.open(name, "rb") as fh:
                docs, tokens, dtype = counter(fh.read(), folder, name)
            files[posixpath.join(TOKENS_DIR, opts.format, name.removesuffix(suffix))] = {
                "documents": docs,
                "tokens": tokens,
            }
    return {
        "format": opts.format,
        "tokenizer": opts.tokenizer,
        "eos": opts.eos,
        "dtype": dtype,
        "files": files,
        "documents": sum(f["documents"] for f in files.values()),
        "tokens": sum(f["tokens"] for f in files.values()),
    }


def _megatron_counts(idx: bytes, _folder: Any, _name: str) -> tuple[int, int, str]:
    """The .idx layout: header, version u64, dtype code u8, sequence count u64, document count u64,
    then int32 lengths (megatron-core's `_IndexReader`)."""
    if idx[:9] != _MEGATRON_HEADER:
        raise ConfigError(f"{_name}: not a Megatron .idx file")
    code = idx[17]
    count = int(np.frombuffer(idx, np.uint64, 1, 18)[0])
    lengths = np.frombuffer(idx, np.int32, count, 34)
    return count, int(lengths.sum(dtype=np.int64)), np.dtype(_MEGATRON_DTYPES[code]).name


def _datatrove_counts(index: bytes, folder: Any, name: str) -> tuple[int, int, str]:
    """`.ds.index` holds each document's end (u64, in tokens); `.ds.metadata` says the token size."""
    ends = np.frombuffer(index, np.uint64)
    size = 2
    meta = name.removesuffix(".index") + ".metadata"
    if folder.isfile(meta):
        with folder.open(meta, "rt") as fh:
            size = int(fh.readline().strip().rsplit("|", 1)[-1])
    return len(ends), int(ends[-1]) if len(ends) else 0, "uint32" if size == 4 else "uint16"
