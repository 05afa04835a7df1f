"""Training and evaluating binary fastText classifiers from labelled documents.

Used by `curate train-classifier` and `scripts/train_sample_models.py`. Examples are
(text, is_positive) pairs; the model's labels are `__label__<positive>` / `__label__<negative>`
(default hq / cc, as GneissWeb's and DCLM's models). Training is single-threaded with a fixed
seed so a run is reproducible.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.core.errors import InputError

from .classifier_options import QUANTIZE_CUTOFF, TrainParams
from .fasttext_scoring import label_probability, preprocess

Example = tuple[str, bool]


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a .jsonl / .jsonl.gz / .json file; a broken line is an InputError naming it."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, i, "invalid_json", str(e)) from None
            if not isinstance(rec, dict):
                raise InputError(path, i, "not_an_object")
            yield rec


def labelled_examples(
    paths: Sequence[str], text_field: str, label_field: str, positive_values: Sequence[str]
) -> list[Example]:
    """(text, label in positive_values) from jsonl files with a label field."""
    pos = {str(v) for v in positive_values}
    out: list[Example] = []
    for p in paths:
        for i, rec in enumerate(read_jsonl(p)):
            text, label = rec.get(text_field), rec.get(label_field)
            if not isinstance(text, str):
                raise InputError(str(p), i, "missing_text", f"no string field {text_field!r}")
            if label is None:
                raise InputError(str(p), i, "missing_label", f"no field {label_field!r}")
            out.append((text, str(label) in pos))
    return out


def file_examples(paths: Sequence[str], text_field: str, positive: bool) -> list[Example]:
    out: list[Example] = []
    for p in paths:
        for i, rec in enumerate(read_jsonl(p)):
            text = rec.get(text_field)
            if not isinstance(text, str):
                raise InputError(str(p), i, "missing_text", f"no string field {text_field!r}")
            out.append((text, positive))
    return out


def split_holdout(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded, stratified split: `fraction` of each class is held out."""
    rng = random.Random(seed)
    train: list[Example] = []
    held: list[Example] = []
    for cls in (True, False):
        group = [e for e in examples if e[1] is cls]
        rng.shuffle(group)
        k = round(len(group) * fraction)
        held.extend(group[:k])
        train.extend(group[k:])
    rng.shuffle(train)
    return train, held


def remove_overlap(train: Sequence[Example], held: Sequence[Example]) -> list[Example]:
    """Training examples whose text is not in the held-out set (e.g. majority minus agreement)."""
    seen = {t for t, _ in held}
    return [e for e in train if e[0] not in seen]


def _write_training_file(examples: Iterable[Example], params: TrainParams, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, is_pos in examples:
            label = params.positive_label if is_pos else params.negative_label
            f.write(f"__label__{label} {preprocess(text, params.preprocess)}\n")


def _train_in_child(path: str, kwargs: dict[str, Any], quantize: bool, cutoff: int, out: str) -> None:
    import fasttext

    model = fasttext.train_supervised(input=path, **kwargs)
    if quantize:
        # retrain=True fine-tunes after pruning; cutoff keeps the most useful rows only
        model.quantize(input=path, qnorm=True, retrain=True, cutoff=cutoff, thread=1, verbose=0)
    model.save_model(out)


def train(examples: Sequence[Example], params: TrainParams, quantize: bool = False, cutoff: int = QUANTIZE_CUTOFF):
    """A trained fastText model (quantized when asked).

    Each attempt runs in a fresh (spawned) process: this fastText build sporadically stops with
    "Encountered NaN" on small data, not reproducibly (same seed, one thread), and once it has
    happened in a process later trainings there tend to fail too. A failed attempt is retried
    with the next seed; after 4 failures the learning rate is halved each time.
    """
    import multiprocessing

    import fasttext

    if not any(p for _, p in examples) or all(p for _, p in examples):
        raise ValueError("training needs both positive and negative examples")
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="curate-ft-") as tmp:
        path = os.path.join(tmp, "train.txt")
        out = os.path.join(tmp, "model.ftz" if quantize else "model.bin")
        _write_training_file(examples, params, path)
        kwargs = params.fasttext_kwargs()
        for attempt in range(8):
            proc = ctx.Process(target=_train_in_child, args=(path, kwargs, quantize, cutoff, out))
            proc.start()
            proc.join()
            if proc.exitcode == 0 and os.path.exists(out):
                break
            if attempt == 7:
                raise RuntimeError(f"fastText training failed {attempt + 1} times (exit code {proc.exitcode})")
            kwargs["seed"] = params.seed + attempt + 1
            if attempt >= 3:
                kwargs["lr"] = kwargs["lr"] / 2
        params.lr_used = kwargs["lr"]
        params.seed_used = kwargs["seed"]
        return fasttext.load_model(out)


@dataclass
class Metrics:
    n: int
    positives: int
    tp: int
    fp: int
    fn: int
    tn: int
    auc: float
    threshold: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.positives,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "accuracy": round(self.accuracy, 4),
            "auc": round(self.auc, 4),
            "threshold": self.threshold,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def positive_probs(model, texts: Sequence[str], params: TrainParams) -> list[float]:
    """P(positive label) per text (never the top-1 confidence)."""
    label = f"__label__{params.positive_label}"
    labels, probs = model.predict([preprocess(t, params.preprocess) for t in texts], k=-1, threshold=0.0)
    return [label_probability(labs, ps, label) for labs, ps in zip(labels, probs)]


def auc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Area under the ROC curve (rank statistic; ties count one half)."""
    pairs = sorted(zip(scores, truth))
    n_pos = sum(truth)
    n_neg = len(truth) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # average 1-based rank of the tie group
        rank_sum += mid * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def evaluate(model, examples: Sequence[Example], params: TrainParams, threshold: float = 0.5) -> Metrics:
    scores = positive_probs(model, [t for t, _ in examples], params)
    truth = [p for _, p in examples]
    tp = sum(1 for s, y in zip(scores, truth) if s >= threshold and y)
    fp = sum(1 for s, y in zip(scores, truth) if s >= threshold and not y)
    fn = sum(1 for s, y in zip(scores, truth) if s < threshold and y)
    tn = len(truth) - tp - fp - fn
    return Metrics(len(truth), sum(truth), tp, fp, fn, tn, auc(scores, truth), threshold)
