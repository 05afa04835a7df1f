"""`curate tokenize OUT`: token shards from an existing output folder's data/, without rerunning its stages.

    curate tokenize out/sample --tokenizer dedup/assets/gpt2               # Megatron .bin/.idx per data file
    curate tokenize out/sample --tokenizer dedup/assets/gpt2 --format datatrove --shuffle --seed 1
    curate tokenize out/sample      # the options of the run's own output.tokenize, when its config had one

Shards go to OUT/tokens/FORMAT/ (replaced); token counts per file and in total to OUT/stats.json
(`tokens`) and to the dataset card's `## Tokens` section. Scratch files and task logs: OUT.work/tokenize/.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tokenize",
        help="write token shards (Megatron or datatrove) from an output folder's data/, without rerunning it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("output", help="a curate output folder (holds data/*.parquet)")
    add_tokenizer_arguments(p)
    p.add_argument("--workers", type=int, default=1, help="tasks at once (one task per data file; default 1)")
    p.set_defaults(fn=cmd_tokenize)


def add_tokenizer_arguments(p: argparse.ArgumentParser) -> None:
    """The `output.tokenize` keys as flags (also used by `curate subset`); unset ones come from the run."""
    p.add_argument("--tokenizer", help="tokenizer.json, a folder holding one, or a hub id (owner/name)")
    p.add_argument("--format", choices=["megatron", "datatrove"], help="shard format (default: megatron)")
    p.add_argument("--eos", help="token text appended after every document (default: <|endoftext|>)")
    p.add_argument("--no-eos", action="store_true", help="append no EOS token")
    p.add_argument("--shuffle", action="store_true", default=None, help="datatrove format: shuffle documents")
    p.add_argument("--seed", type=int, help="seed of the shuffles (default 0)")


def cmd_tokenize(args: argparse.Namespace) -> int:
    # imported here: datatrove and pyarrow load only when the command runs, not for `curate --help`
    from .tokenize_folder import run

    return run(args)
