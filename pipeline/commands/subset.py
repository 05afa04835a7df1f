"""`curate subset OUT --tokens N [--by COLUMN] --output SUB`: a token-budget subset of an output folder.

    curate subset out/web --tokens 10e9 --by ft_dclm --output out/web-10B
    curate subset out/web --tokens 1e9 --by ft_dclm --output out/web-1B    # inside the 10B one

Documents are ranked once: by COLUMN, highest first (nulls last), ties by id; without --by, by a
hash of the id (a seeded-free, reproducible shuffle). The subset is the longest prefix of that
ranking whose tokens (the tokenizer of the shards, EOS included) fit in N. A prefix, not a greedy
fill that skips a long document and takes shorter ones after it: only a prefix makes every
smaller budget's subset lie inside every larger one's. SUB gets data/ (rows in their source order,
the source's schema), token shards (unless --no-shards), stats.json and a dataset card.
"""

from __future__ import annotations

import argparse
from typing import Any

from .tokenize import add_tokenizer_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "subset",
        help="write a subset of at most N tokens (best documents first with --by), nested across budgets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="OUT", help="a curate output folder (holds data/*.parquet)")
    p.add_argument("--tokens", type=float, required=True, help="token budget (e.g. 1e9)")
    p.add_argument("--by", metavar="COLUMN", help="numeric column to rank by, highest first (ties: by id)")
    p.add_argument("--output", required=True, help="folder for the subset (a new output folder)")
    p.add_argument("--no-shards", action="store_true", help="write data/ only, no token shards")
    add_tokenizer_arguments(p)
    p.set_defaults(fn=cmd_subset)


def cmd_subset(args: argparse.Namespace) -> int:
    # imported here: numpy, pyarrow and datatrove load only when the command runs, not for `curate --help`
    from .subset_build import run

    return run(args)
