"""`curate refiner label | train | eval`: build your own ProX refiner.

    curate refiner label configs/refiner_label.yaml        # a run with a refiner_label stage -> OUTPUT/sft/
    curate refiner train --data out/label --preset small --output out/student --holdout 0.1
    curate refiner eval --data out/label --holdout 0.1 --model student=transformers:out/student \\
        --model floor=transformers:out/floor --json out/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from curate.core.errors import ConfigError
from curate.refiners.train_options import TrainConfig

from .flags import add_option_flags, options_from_args

# TrainConfig fields given as flags of `refiner train` (defaults and help come from the dataclass)
TRAIN_OPTIONS = (
    "stage",
    "holdout",
    "epochs",
    "batch_size",
    "micro_batch_size",
    "lr",
    "min_lr",
    "warmup_steps",
    "max_len",
    "group_by_length",
    "max_steps",
    "max_time_s",
    "save_steps",
    "resume",
    "device",
    "seed",
    "progress",
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "refiner",
        help="build your own ProX refiner: label with a teacher, train, evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="refiner_command", metavar="COMMAND", required=True)

    lab = sub.add_parser(
        "label",
        help="run a config with a refiner_label stage; SFT rows land in OUTPUT/sft/",
        description="Run a config with a `stage: refiner_label` entry: a teacher writes programs for prox_refine's\n"
        "prompts, and the valid ones become SFT rows in OUTPUT/sft/.\n\n"
        "example:\n  curate refiner label configs/refiner_label.yaml --limit 200 --output out/refiner-label",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab.add_argument("config", help="YAML config with input:, output: and a `stage: refiner_label` entry")
    lab.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    lab.add_argument("--output", help="override output.path")
    lab.add_argument("--limit", type=int, help="read at most N records per task")
    lab.add_argument("--no-progress", action="store_true", help="no progress display")
    lab.set_defaults(fn=cmd_label)

    tr = sub.add_parser(
        "train",
        help="fine-tune a causal LM on SFT rows (loss on the program tokens only)",
        description="Train a refiner on the SFT rows of `curate refiner label`; prox_refine loads the output folder.\n\n"
        "examples:\n"
        "  # a small model from scratch on CPU, 10 % of documents held out for eval\n"
        "  curate refiner train --data out/refiner-label --preset small --holdout 0.1 --output out/student\n"
        "  # adapt a checkpoint: one epoch, 20 warm-up steps, another data order\n"
        "  curate refiner train --data out/refiner-label --init out/student --epochs 1 --warmup-steps 20 \\\n"
        "      --seed 1 --output out/student2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tr.add_argument("--data", action="append", required=True, help="SFT parquet file or folder (repeatable)")
    tr.add_argument("--output", required=True, help="refiner folder to write (prox_refine loads it as it is)")
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="fresh model of a size preset (0.3b, small, tiny)")
    src.add_argument(
        "--base",
        "--init",
        dest="init",
        metavar="PATH",
        help="pretrained model folder to fine-tune (any causal LM, e.g. SmolLM2, or a released refiner)",
    )
    add_option_flags(tr, TrainConfig, TRAIN_OPTIONS)
    tr.set_defaults(fn=cmd_train)

    ev = sub.add_parser(
        "eval",
        help="doc F1, chunk line-removal F1, normalize exact match, valid share",
        description="Score refiners on held-out SFT rows with ProX's metrics, side by side.\n\n"
        "example:\n  curate refiner eval --data out/refiner-label --holdout 0.1 \\\n"
        "      --model student=transformers:out/student --model boilerplate --json out/eval.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("--data", action="append", required=True, help="SFT parquet file or folder (repeatable)")
    ev.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=BACKEND:PATH",
        help="model to score (repeatable; backend vllm | transformers, or just `boilerplate`)",
    )
    ev.add_argument(
        "--holdout", type=float, default=0.0, help="score the held-out share of `train --holdout` (0: every row)"
    )
    ev.add_argument(
        "--stage", choices=["all", "doc", "chunk"], default="all", help="which rows to score (default: all)"
    )
    ev.add_argument("--limit", type=int, help="at most N rows per stage")
    ev.add_argument("--dtype", default="float32", help="weights dtype for the model backends")
    ev.add_argument("--device", default="auto", help="transformers: cpu | cuda | auto")
    ev.add_argument(
        "--max-model-len", type=int, default=2048, help="context length of the model backends (default %(default)s)"
    )
    ev.add_argument(
        "--max-errors", type=int, default=2, help="as prox_refine: programs with this many errors are ignored"
    )
    ev.add_argument("--json", help="write the metrics here as JSON")
    ev.set_defaults(fn=cmd_eval)


# ---------------------------------------------------------------------------- label


def label_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The refiner_label stages' counters (docs, valid / invalid examples per stage, reasons)."""
    out: dict[str, Any] = {}
    for st in stats.get("stages", []):
        extra = st.get("extra", {})
        if any(k.startswith(("doc/", "chunk/")) for k in extra):
            out[st["label"]] = {
                "docs": st["docs_in"],
                **{
                    k: int(v) for k, v in sorted(extra.items()) if k.startswith(("doc/", "chunk/", "invalid/", "empty"))
                },
            }
    return out


def print_label_stats(table: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    for label, counts in table.items():
        t = Table(title=f"{label}: teacher answers", title_justify="left")
        t.add_column("counter")
        t.add_column("n", justify="right")
        for k, v in counts.items():
            t.add_row(k, f"{v:,}")
        for stage in ("doc", "chunk"):
            ok, bad = counts.get(f"{stage}/valid", 0), counts.get(f"{stage}/invalid", 0)
            if ok + bad:
                t.add_row(f"{stage}: valid share", f"{ok / (ok + bad):.3f}")
        if counts.get("chunk/valid"):
            t.add_row("chunk: edited share", f"{counts.get('chunk/edited', 0) / counts['chunk/valid']:.3f}")
        Console(stderr=True).print(t)


def cmd_label(args: argparse.Namespace) -> int:
    from curate.core.atomic import write_json_atomic

    from ..config import load_config
    from ..run import run_config
    from ..stats import print_summary

    overrides: dict[str, Any] = {}
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k] = yaml.safe_load(v)
    if args.output:
        overrides["output.path"] = args.output
    if args.limit is not None:
        overrides["input.limit"] = args.limit
    cfg = load_config(args.config, overrides)
    if not any(e.stage == "refiner_label" for e in cfg.entries):
        raise ConfigError(
            f"{args.config}: no `stage: refiner_label` entry in stages:; add one (see docs/stages/refiner.md)"
        )
    stats = run_config(cfg, progress=not args.no_progress)
    print_summary(stats)
    table = label_stats(stats)
    print_label_stats(table)
    out = Path(cfg.output.path)
    write_json_atomic(str(out), "label_stats.json", table)
    print(f"SFT rows: {out}/sft/   label stats: {out}/label_stats.json", file=sys.stderr)
    return 0 if stats["complete"] else 1


# ---------------------------------------------------------------------------- train / eval


def cmd_train(args: argparse.Namespace) -> int:
    from curate.refiners.train import train

    cfg = TrainConfig(
        data=args.data,
        output=args.output,
        preset=args.preset,
        init=args.init,
        **options_from_args(args, TrainConfig, TRAIN_OPTIONS),
    )
    r = train(cfg)
    print(
        f"trained {r.steps} steps on {r.examples} examples: {r.tokens:,} tokens in {r.wall_s} s "
        f"({r.tokens_per_s:,.0f} tokens/s, {r.device} {r.dtype}); loss {r.losses[0]:.4f} -> {r.losses[-1]:.4f}"
        if r.losses
        else f"nothing to do (already at the last step); wrote {r.output}"
    )
    print(f"refiner folder: {r.output} (prox_refine: doc_model / chunk_model: {r.output})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from curate.core.atomic import write_file_atomic
    from curate.refiners.evaluate import evaluate, parse_model, table
    from curate.refiners.sft import read_sft
    from curate.refiners.train import select

    specs = [parse_model(m) for m in args.model]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--model: two models are named the same ({', '.join(names)}); name them NAME=BACKEND:PATH")
    rows = select(read_sft(args.data), args.stage, args.holdout, "heldout" if args.holdout > 0 else "train")
    if args.limit is not None:
        rows = [r for st in ("doc", "chunk") for r in [x for x in rows if x["stage"] == st][: args.limit]]
    if not rows:
        raise ConfigError("no valid SFT rows to score (check --data, --stage and --holdout)")
    import torch

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # vllm on CPU runs eagerly; on a GPU CUDA graphs are worth their capture time
    results = evaluate(
        rows,
        specs,
        max_errors=args.max_errors,
        dtype=args.dtype,
        device=args.device,
        max_model_len=args.max_model_len,
        enforce_eager=not torch.cuda.is_available(),
    )
    Console().print(table(results))
    if args.json:
        write_file_atomic(args.json, json.dumps(results, indent=2))
    return 0
