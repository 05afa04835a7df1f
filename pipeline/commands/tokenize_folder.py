"""The work of `curate tokenize` (commands/tokenize.py parses its flags): token shards from an output
folder's data/, the counts recorded in its stats.json and card."""

from __future__ import annotations

import argparse
import json
import posixpath
from typing import Any

from datatrove.io import get_datafolder
from pydantic import ValidationError

from curate.core.atomic import write_atomic, write_json_atomic
from curate.core.errors import ConfigError, CurateError
from curate.core.options import format_validation_error

from ..config import TokenizeConfig
from ..dataset_card import CARD_FILE, replace_tokens_section
from ..executors import CurateLocalExecutor
from ..layout import RUN_FILE, default_work_dir
from ..logs import quiet_console
from ..stats import tokens_line
from ..tokenize_output import resolve_tokenizer, token_counts, tokenize_jobs, tokens_dir


def tokenize_options(args: argparse.Namespace, output: str) -> TokenizeConfig:
    """Flags over the run's recorded `output.tokenize` (its config may have had one), validated."""
    given = {k: getattr(args, k) for k in ("tokenizer", "format", "eos", "shuffle", "seed")}
    merged = {**recorded_tokenize(output), **{k: v for k, v in given.items() if v is not None}}
    if args.no_eos:
        merged["eos"] = None
    if not merged.get("tokenizer"):
        raise ConfigError(f"--tokenizer: required ({output} was not made with output.tokenize)")
    try:
        return TokenizeConfig.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, TokenizeConfig, "tokenize options")) from None


def recorded_tokenize(output: str) -> dict[str, Any]:
    """`output.tokenize` of the config that made OUT, from its run record (empty when there is none)."""
    df = get_datafolder(output)
    if not df.isfile(RUN_FILE):
        return {}
    with df.open(RUN_FILE, "rt") as f:
        record = json.load(f)
    return dict((record.get("config") or {}).get("output", {}).get("tokenize") or {})


def record_tokens(output: str, tokens: dict[str, Any]) -> None:
    """Counts into OUT/stats.json and the card, which exist for a finished run (kept as they are otherwise)."""
    df = get_datafolder(output)
    stats: dict[str, Any] = {}
    if df.isfile("stats.json"):
        with df.open("stats.json", "rt") as f:
            stats = json.load(f)
    write_json_atomic(output, "stats.json", {**stats, "tokens": tokens})
    if df.isfile(CARD_FILE):
        with df.open(CARD_FILE, "rt") as f:
            card = f.read()
        write_atomic(output, CARD_FILE, replace_tokens_section(card, tokens))


def tokenize_folder(output_dir: str, opts: TokenizeConfig, work_dir: str, workers: int = 1) -> dict[str, Any]:
    """Tokenize OUTPUT/data/ now (`curate tokenize`, `curate subset`), one task per data file.

    The shards of this format are replaced, and `work_dir` (task logs, datatrove's per-task files) is
    emptied first: every call tokenizes from scratch, since the text or the tokenizer may have changed.
    """
    data = get_datafolder(posixpath.join(output_dir, "data"))
    n_files = len(data.list_files(glob_pattern="*.parquet")) if data.exists("") else 0
    if n_files == 0:
        raise ConfigError(f"{output_dir}: no data/*.parquet to tokenize (is this a curate output folder?)")
    for folder in (tokens_dir(output_dir, opts.format), work_dir):
        if get_datafolder(folder).exists(""):
            get_datafolder(folder).rm("", recursive=True)
    for i, job in enumerate(tokenize_jobs(opts, output_dir, work_dir, n_files)):
        logs = posixpath.join(work_dir, "logs", f"{i:02d}_{job.name}")
        executor = CurateLocalExecutor(
            job.steps, tasks=job.tasks, workers=max(1, min(workers, job.tasks)), logging_dir=logs, skip_completed=True
        )
        executor.run()
        failed = executor.get_incomplete_ranks(skip_completed=True)
        if failed:
            raise CurateError(f"tokenize: {len(failed)} of {job.tasks} tasks failed; logs in {logs}/logs")
    return token_counts(output_dir, opts)


def run(args: argparse.Namespace) -> int:
    output = args.output.rstrip("/")
    opts = resolve_tokenizer(tokenize_options(args, output))
    work = posixpath.join(default_work_dir(output), "tokenize")
    with quiet_console():  # datatrove's INFO lines and per-step stats: the one line below says it
        tokens = tokenize_folder(output, opts, work, workers=args.workers)
    record_tokens(output, tokens)
    print(tokens_line(tokens))
    return 0
