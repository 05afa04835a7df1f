"""The values of a rule's `quantile(q)` thresholds, computed over every document the rule will see.

Two side jobs over the documents handed to the rule (quality_rule builds them): `QuantileSample`
keeps, per task, a uniform sample (reservoir, seeded) of each column's numbers and how many it saw;
`QuantileMerge` (one task) weights each task's sample by seen / kept and writes the quantiles to
`quantiles.json`, and to the stage's frozen.json (core/frozen.py: the run copies it into
`_curate_run.json` and the dataset card). While no task saw more than `sample_size` values the sample is every value and the
result is numpy's (linear) quantile of them; beyond it an estimate whose rank error shrinks as
1/sqrt(sample_size) (1e6 values: ~0.1 percentile points). The file stays in the run's work folder,
so a resumed run applies the value it computed first.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator

import fsspec
import numpy as np
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from curate.core.atomic import write_file_atomic
from curate.core.errors import CurateError

from .rule import quantile_key

FOLDER = "quantiles"  # the stage's work folder that holds VALUES_FILE
VALUES_FILE = "quantiles.json"


def _number(v: object) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


class QuantileSample(PipelineStep):
    """Per task: a uniform sample of each column's numbers (at most `sample_size`), and the count seen."""

    name = "quantile sample"
    type = "curate-plumbing"

    def __init__(self, columns: list[str], folder: str, sample_size: int, seed: int = 0) -> None:
        super().__init__()
        self.columns, self.folder, self.sample_size, self.seed = sorted(columns), folder, sample_size, seed

    def run(self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        rng = random.Random(self.seed * 1_000_003 + rank)
        kept: dict[str, list[float]] = {c: [] for c in self.columns}
        seen = dict.fromkeys(self.columns, 0)
        for doc in data or ():
            for c in self.columns:
                v = _number(doc.metadata.get(c))
                if v is None:
                    continue
                seen[c] += 1
                if len(kept[c]) < self.sample_size:
                    kept[c].append(v)
                else:  # Algorithm R: each value stays with probability sample_size / seen
                    j = rng.randrange(seen[c])
                    if j < self.sample_size:
                        kept[c][j] = v
        out = {c: {"seen": seen[c], "values": kept[c]} for c in self.columns}
        write_file_atomic(f"{self.folder.rstrip('/')}/{rank:05d}.json", json.dumps(out))
        return iter(())


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-quantile of values with weights (the inverse of their weighted distribution function)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    k = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(v[min(k, len(v) - 1)])


def merge_samples(samples: list[dict], wanted: dict[str, tuple[str, float]]) -> dict[str, float]:
    """quantile_key -> value from every task's sample (see the module doc for exact vs estimated)."""
    out: dict[str, float] = {}
    for key, (column, q) in sorted(wanted.items()):
        parts = [s[column] for s in samples if s.get(column) and s[column]["values"]]
        if not parts:
            raise CurateError(f"{key}: no document has a number in column {column!r}, so it has no quantile")
        values = np.concatenate([np.asarray(p["values"], dtype=np.float64) for p in parts])
        if all(p["seen"] == len(p["values"]) for p in parts):
            out[key] = float(np.quantile(values, q))
        else:
            weights = np.concatenate([np.full(len(p["values"]), p["seen"] / len(p["values"])) for p in parts])
            out[key] = weighted_quantile(values, weights, q)
    return out


class QuantileMerge(PipelineStep):
    """One task: every task's sample (in `samples`) -> `folder`/quantiles.json ({quantile_key: value})."""

    name = "quantile merge"
    type = "curate-plumbing"

    def __init__(
        self, samples: str, folder: str, wanted: dict[str, tuple[str, float]], frozen: str | None = None
    ) -> None:
        super().__init__()
        self.samples, self.folder, self.wanted, self.frozen = samples, folder, wanted, frozen

    def run(self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        fs, root = fsspec.core.url_to_fs(self.samples)
        samples = []
        for path in sorted(fs.glob(f"{root.rstrip('/')}/[0-9]*.json")):
            with fs.open(path, "rt") as fh:
                samples.append(json.load(fh))
        values = merge_samples(samples, self.wanted)
        text = json.dumps(values, indent=1, sort_keys=True)
        write_file_atomic(f"{self.folder.rstrip('/')}/{VALUES_FILE}", text)
        if self.frozen:
            write_file_atomic(self.frozen, text)
        return iter(())


def read_values(folder: str) -> dict[str, float]:
    """The computed quantiles of a run (written by QuantileMerge)."""
    with fsspec.open(f"{folder.rstrip('/')}/{VALUES_FILE}", "rt") as fh:
        return {str(k): float(v) for k, v in json.load(fh).items()}


__all__ = [
    "FOLDER",
    "VALUES_FILE",
    "QuantileMerge",
    "QuantileSample",
    "merge_samples",
    "quantile_key",
    "read_values",
    "weighted_quantile",
]
