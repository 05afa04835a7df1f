"""The options of training a refiner (`curate refiner train`, refiners/train.py): defaults and meanings are
stated here once, and the command's flags are generated from them.

Only the standard library: `curate --help` builds the command's parser from this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, help: str = "", example: str = "", **more: Any) -> Any:
    return field(default=default, metadata={"help": help, "example": example, **more})


@dataclass
class TrainConfig:
    data: list[str]
    output: str
    preset: str | None = None
    init: str | None = None
    stage: str = _opt("all", "which rows to train on", choices=["all", "doc", "chunk"])
    # share of documents (by id hash) kept out of training for `refiner eval`
    holdout: float = _opt(0.0, "share of documents kept out (same split as eval)")
    epochs: float = _opt(3.0, "passes over the rows", "a fraction stops part-way, e.g. 0.5")
    batch_size: int = _opt(64, "sequences per optimizer step", "ProX: 64")
    micro_batch_size: int = _opt(8, "sequences per forward pass (accumulated)")
    lr: float | None = _opt(None, "peak learning rate", unset="1e-5 with --base, 2e-3 with --preset")
    min_lr: float | None = _opt(None, "cosine floor", unset="lr / 10")
    warmup_steps: int = _opt(0, "optimizer steps of linear warm-up to --lr before the cosine decay", "e.g. 20")
    weight_decay: float = _opt(0.0, "AdamW weight decay")
    max_len: int = _opt(2048, "longer examples are skipped (counted)")
    group_by_length: bool = _opt(True, "plain shuffled micro-batches", flag="--no-length-grouping")
    max_steps: int | None = _opt(None, "stop after this many optimizer steps", unset="every epoch")
    max_time_s: float | None = _opt(
        None, "stop after this many seconds (the model is still saved)", flag="--max-time", metavar="SECONDS"
    )
    max_examples: int | None = _opt(None, "train on at most this many examples")
    save_steps: int = _opt(0, "checkpoint every N steps", "0: only the final folder")
    resume: bool = _opt(False, "continue from the latest checkpoint in --output")
    device: str = _opt("auto", "cpu | cuda | auto")
    seed: int = _opt(0, "seed of the data order and of a fresh model's weights", "--resume needs the same")
    log_every: int = _opt(10, "optimizer steps between loss lines")
    progress: bool = _opt(True, "no progress line")
