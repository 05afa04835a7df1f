"""`curate preview CONFIG`: run a config on a seeded sample of its input and project the full run.

    curate preview configs/fineweb.yaml --fraction 0.001 --seed 1
    curate preview configs/sample.yaml --docs 200 --json > preview.json

Prints per stage the sample's documents and characters in and out, top drop reasons and CPU throughput,
then the projection for the whole input (documents, CPU core-hours, device-hours, memory, output size,
wall time). The preview is saved as WORK/preview.json; `curate plan` shows it while the config's
fingerprint is unchanged. Dedup retention is never scaled from the sample: see preview/project.py.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """The sub-command; cli.py adds run's flags (--limit, --output, --executor, ...) and `overrides`."""
    p = subparsers.add_parser(
        "preview",
        help="run a config on a seeded sample of its input and project the full run's counts and cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="YAML config file (see docs/configuration.md)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (as for run)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--docs", type=int, help="sample this many documents (default 1000)")
    size.add_argument("--fraction", type=float, help="sample this fraction of the documents (0 < F <= 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--json", action="store_true", help="print everything, the projection included, as one JSON")
    p.add_argument("--html", metavar="PATH", help="also write a page with examples of each stage's drops")
    p.add_argument(
        "--refine-tokens-per-s",
        type=float,
        metavar="RATE",
        help="model input tokens per second per device, for refinement device-hours when the preview measured none",
    )
    p.add_argument(
        "--scratch",
        metavar="DIR",
        help="folder for the sample and the preview runs (kept; default: a temporary one, removed)",
    )
    p.set_defaults(fn=cmd_preview)


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview_run import preview

    return preview(args)
