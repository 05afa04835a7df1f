"""The work of `curate subset` (commands/subset.py parses its flags and says what a subset is): rank
an output folder's documents, take the prefix within the token budget, write it with its card."""

from __future__ import annotations

import argparse
import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.io import get_datafolder

from curate.core.atomic import write_atomic, write_json_atomic
from curate.core.errors import ConfigError

from ..config import TokenizeConfig
from ..dataset_card import CARD_FILE
from ..layout import default_work_dir
from ..logs import quiet_console
from ..tokenize_output import BATCH_SIZE, resolve_tokenizer
from .tokenize_folder import record_tokens, tokenize_folder, tokenize_options


@dataclass
class Ranked:
    """Every document of the source, one entry each, in ranking order."""

    files: list[str]
    file_index: np.ndarray  # which file
    row: np.ndarray  # row in that file
    tokens: np.ndarray  # tokens it takes in the shards


def run(args: argparse.Namespace) -> int:
    source, target = args.source.rstrip("/"), args.output.rstrip("/")
    if posixpath.abspath(source) == posixpath.abspath(target):
        raise ConfigError("--output: must differ from OUT (a subset never overwrites its source)")
    opts = resolve_tokenizer(tokenize_options(args, source))
    budget = int(args.tokens)
    if budget <= 0:
        raise ConfigError(f"--tokens: must be positive, got {args.tokens}")
    ranked = rank_documents(source, opts, args.by)
    chosen = fit_budget(ranked.tokens, budget)
    write_rows(ranked, chosen, source, target)
    summary = subset_summary(source, args.by, budget, ranked, chosen, opts)
    write_json_atomic(target, "stats.json", summary)
    write_atomic(target, CARD_FILE, subset_card(target, summary))
    if not args.no_shards and chosen:
        with quiet_console():
            tokens = tokenize_folder(target, opts, posixpath.join(default_work_dir(target), "tokenize"))
        record_tokens(target, tokens)
    print(
        f"subset: {summary['documents']:,} documents, {summary['selected_tokens']:,} tokens (budget {budget:,}) in {target}"
    )
    return 0


def fit_budget(tokens_in_rank_order: np.ndarray, budget: int) -> int:
    """How many of the ranked documents fit: the longest prefix within the budget (see the module doc)."""
    return int(np.searchsorted(np.cumsum(tokens_in_rank_order), budget, side="right"))


def rank_documents(source: str, opts: TokenizeConfig, by: str | None) -> Ranked:
    """Read id, text and the rank column of every data file once, count tokens, sort. Per document only
    Arrow / numpy columns are kept (~40 bytes plus its id), so a billion-row output ranks in tens of GB."""
    files = _data_files(source)
    tokenizer = shard_tokenizer(opts)
    batches: list[pa.RecordBatch] = []
    for i, path in enumerate(files):
        _check_column(path, by)
        row = 0
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=BATCH_SIZE, columns=["id", "text", *([by] if by else [])]
        ):
            texts = [t or "" for t in batch.column(1).to_pylist()]
            ids = pc.cast(batch.column(0), pa.string())
            rank = pc.cast(batch.column(2), pa.float64()) if by else pa.array(_id_hashes(ids), pa.uint64())
            batches.append(
                pa.record_batch(
                    {
                        "file": pa.array(np.full(len(texts), i, np.int64)),
                        "row": pa.array(np.arange(row, row + len(texts), dtype=np.int64)),
                        "tokens": pa.array([len(e.ids) for e in tokenizer.encode_batch(texts)], pa.int64()),
                        "rank": rank,
                        "id": ids,
                    }
                )
            )
            row += len(texts)
    return _sorted(files, batches, by is not None)


def _id_hashes(ids: pa.Array) -> list[int]:
    """A reproducible shuffle: the rank of an id never depends on the other documents, so budgets nest."""
    return [int.from_bytes(hashlib.blake2b((i or "").encode(), digest_size=8).digest(), "big") for i in ids.to_pylist()]


def _sorted(files: list[str], batches: list[pa.RecordBatch], by_score: bool) -> Ranked:
    if not batches:
        empty = np.array([], dtype=np.int64)
        return Ranked(files, empty, empty, empty)
    table = pa.Table.from_batches(batches)
    # by score: highest first, nulls (and NaN) last, then id; by hash: ascending, then id
    keys = [("rank", "descending" if by_score else "ascending", "at_end"), ("id", "ascending", "at_end")]
    table = table.take(pc.sort_indices(table, sort_keys=keys))
    file, row, tokens = (table.column(name).to_numpy() for name in ("file", "row", "tokens"))
    return Ranked(files, file, row, tokens)


def shard_tokenizer(opts: TokenizeConfig) -> Any:
    """The tokenizer as datatrove's writers set it up (PipelineStepWithTokenizer.tokenizer): with `eos`,
    its post-processor is replaced by `$A <EOS>`, so a count here is the document's length in the shards."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer.from_file(opts.tokenizer)
    if opts.eos:
        tok.post_processor = TemplateProcessing(
            single="$A <EOS>", special_tokens=[("<EOS>", tok.token_to_id(opts.eos))], pair=None
        )
    return tok


def _data_files(source: str) -> list[str]:
    data = get_datafolder(posixpath.join(source, "data"))
    names = sorted(data.list_files(glob_pattern="*.parquet")) if data.exists("") else []
    if not names:
        raise ConfigError(f"{source}: no data/*.parquet (is this a curate output folder?)")
    return [data.resolve_paths(n) for n in names]


def _check_column(path: str, by: str | None) -> None:
    if by is None:
        return
    schema = pq.read_schema(path)
    if by not in schema.names:
        raise ConfigError(f"--by: no column {by!r} in {path}; columns: {', '.join(schema.names)}")
    kind = schema.field(by).type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise ConfigError(f"--by: column {by!r} is {kind}, not a number")


def write_rows(ranked: Ranked, chosen: int, source: str, target: str) -> None:
    """SUB/data/NNNNN.parquet: the chosen rows of each source file, in their source order, same schema."""
    out = get_datafolder(posixpath.join(target, "data"))
    if out.exists(""):
        out.rm("", recursive=True)
    for i, path in enumerate(ranked.files):
        rows = np.sort(ranked.row[:chosen][ranked.file_index[:chosen] == i])
        if len(rows) == 0:
            continue
        table = pq.read_table(path).take(pa.array(rows))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        write_atomic(out, f"{i:05d}.parquet", sink.getvalue().to_pybytes())


def subset_summary(
    source: str, by: str | None, budget: int, ranked: Ranked, chosen: int, opts: TokenizeConfig
) -> dict[str, Any]:
    return {
        "subset_of": source,
        "ranked_by": by or "hash of id",
        "budget_tokens": budget,
        "documents": chosen,
        "selected_tokens": int(ranked.tokens[:chosen].sum()),
        "source_documents": len(ranked.tokens),
        "source_tokens": int(ranked.tokens.sum()),
        "tokenizer": opts.tokenizer,
        "eos": opts.eos,
    }


def subset_card(target: str, s: dict[str, Any]) -> str:
    """The subset's own card: what it is a subset of, how it was ranked, and its counts."""
    rank = "a hash of the id (a reproducible shuffle)"
    if s["ranked_by"] != "hash of id":
        rank = f"column `{s['ranked_by']}`, highest first (nulls last, ties by id)"
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  default: true",
        "  data_files:",
        "  - split: train",
        "    path: data/*.parquet",
        "tags: [curate, pretraining, text, subset]",
        "---",
        f"# Subset of `{s['subset_of']}`: at most {s['budget_tokens']:,} tokens",
        "",
        f"{s['documents']:,} of {s['source_documents']:,} documents, {s['selected_tokens']:,} of {s['source_tokens']:,} tokens "
        f"(tokenizer `{s['tokenizer']}`, EOS {s['eos']!r} counted). Documents were ranked by {rank}; this is the "
        "longest prefix of that ranking within the budget, so the subset of a smaller budget lies inside this one.",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'subset = load_dataset("{target}", split="train")',
        "```",
    ]
    return "\n".join(lines) + "\n"
