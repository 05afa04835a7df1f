"""The options of training a fastText classifier (`curate train-classifier`, the test and sample models):
their defaults and meanings are stated here once, and the command's flags are generated from them.

Only the standard library: `curate --help` builds the command's parser from this module.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

# rows of the input matrix kept when a model is quantized (.ftz)
QUANTIZE_CUTOFF = 5000

# how a text is flattened to the one line fastText predicts on (fasttext_scoring.preprocess)
Preprocess = Literal["dclm", "newlines"]


def _opt(default: Any, help: str, example: str = "", **more: Any) -> Any:
    return field(default=default, metadata={"help": help, "example": example, **more})


@dataclass
class TrainParams:
    epoch: int = _opt(25, "passes over the training data", "e.g. 50 for a few hundred docs")
    lr: float = _opt(
        0.5,
        "learning rate",
        "a training that stops on NaN is retried with the next seed, after 4 tries at half the rate",
    )
    word_ngrams: int = _opt(2, "word n-grams as features", "1: words only, 2: words and bigrams")
    dim: int = _opt(16, "size of the word vectors", "e.g. 64 for more data")
    min_count: int = _opt(1, "words seen fewer times are ignored")
    bucket: int = _opt(20_000, "hash buckets for n-gram features", "e.g. 2000000 for millions of docs: bigger model")
    minn: int = _opt(0, "shortest character n-gram (0: none)")
    maxn: int = _opt(0, "longest character n-gram (0: none)")
    seed: int = _opt(0, "seed of the split and of fastText")
    positive_label: str = _opt("hq", "label name of positive documents (DCLM / GneissWeb: hq)")
    negative_label: str = _opt("cc", "label name of negative documents (DCLM / GneissWeb: cc)")
    preprocess: str = _opt(
        "dclm",
        "text flattening (must match the `preprocess:` of the stage using the model)",
        choices=list(typing.get_args(Preprocess)),
    )
    lr_used: float | None = None  # set by train(): lower than lr when training had to be restarted
    seed_used: int | None = None

    def fasttext_kwargs(self) -> dict[str, Any]:
        return dict(
            epoch=self.epoch,
            lr=self.lr,
            wordNgrams=self.word_ngrams,
            dim=self.dim,
            minCount=self.min_count,
            bucket=self.bucket,
            minn=self.minn,
            maxn=self.maxn,
            seed=self.seed,
            thread=1,
            verbose=0,
            loss="softmax",
        )
