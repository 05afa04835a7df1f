"""fastText scoring: P(label) per model, several models in one pass, batched predict.

The score written for a quality model is the probability of its configured label
(`__label__hq` by default), read from the full label distribution (`k=-1`). It is never the
top-1 confidence: for a binary model, top-1 confidence is >= 0.5 whatever the label, so
thresholds like GneissWeb's `dclm > 0.002` would always pass (the mistake in the reference
code that DESIGN.md points out).

Each model declares its text preprocessing, because fastText predicts one line at a time and
the models were trained on differently flattened text:
- `dclm`: `" ".join(text.strip().splitlines())` (DCLM's fasttext-oh-eli5 recipe)
- `newlines`: every "\\n" replaced by a space (GneissWeb's annotators)
Documents are preprocessed once per distinct mode and each model predicts the whole batch in
one call (fastText's predict accepts a list). `flatten_lines` and the scorers' `score_lines` go one
step further for the ensemble: each flattened text ends with the "\\n" that fastText's `predict`
appends to every text of a list (after checking that it holds none) and goes to the predictor as it
is: the same input to the same C++ call, without the per-model copy of the batch and its check.

Category classifiers use the same machinery: a model "says its category" when its top label is
not the negative label (`__label__cc`), and its score is 1 - P(negative).

Every probability comes from `label_probability`, which undoes fastText's smoothing: predict
reports exp(log(p + 1e-5)), so a certain label came out as 1.00001 (a binary model's two labels
summed to 1.00002) and scores left [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from pydantic import Field, field_validator

from curate.core.errors import ConfigError
from curate.core.model_refs import resolve_model_file
from curate.core.options import ModelRef, StrictModel

from .classifier_options import Preprocess

# fastText's predict adds this to every probability before taking the log (`std_log` in loss.cc)
FASTTEXT_SMOOTHING = 1e-5


def label_probability(labels: Sequence[str], probs: Sequence[float] | np.ndarray, label: str) -> float:
    """P(label) in [0, 1] from one fastText prediction made with k=-1 (every label, best first).

    0.0 when the label is not in the prediction (no probability mass above the threshold)."""
    try:
        p = float(probs[list(labels).index(label)]) - FASTTEXT_SMOOTHING
    except ValueError:
        return 0.0
    return min(1.0, max(0.0, p))


def preprocess(text: str, mode: str) -> str:
    if mode == "dclm":
        return " ".join(text.strip().splitlines())
    if mode == "newlines":
        return text.replace("\n", " ")
    raise ValueError(f"unknown preprocessing {mode!r}")


class FastTextModelSpec(StrictModel):
    """One fastText classifier and what to read from it."""

    name: str = Field(
        description="short name; the score column is ft_<name> unless `column` is set",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    path: ModelRef = Field(description="local .bin/.ftz file, or a hub repository id (owner/name)")
    filename: str | None = Field(
        None, description="file inside the hub repository (default: a known name, or the only .bin)"
    )
    label: str = Field("__label__hq", description="the label whose probability is written (not the top-1 confidence)")
    preprocess: Preprocess = Field(
        "newlines", description="dclm: ' '.join(text.strip().splitlines()); newlines: \\n -> space"
    )
    column: str | None = Field(None, description="output column (default ft_<name>)")

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        return v if v.startswith("__label__") else f"__label__{v}"

    @property
    def out_column(self) -> str:
        return self.column or f"ft_{self.name}"


class CategoryModelSpec(StrictModel):
    """A binary category classifier: its category, or the negative label."""

    name: str = Field(
        description="category name (medical, education, ...); score column cat_<name>",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    path: ModelRef = Field(description="local .bin/.ftz file, or a hub repository id (owner/name)")
    filename: str | None = Field(None, description="file inside the hub repository")
    negative_label: str = Field("__label__cc", description="the label meaning 'not this category'")
    preprocess: Preprocess = Field("newlines", description="text flattening before predict")

    @field_validator("negative_label")
    @classmethod
    def _label(cls, v: str) -> str:
        return v if v.startswith("__label__") else f"__label__{v}"

    @property
    def out_column(self) -> str:
        return f"cat_{self.name}"


Spec = TypeVar("Spec", FastTextModelSpec, CategoryModelSpec)


def distinct_names(specs: list[Spec], what: str) -> list[Spec]:
    """`specs` unchanged; a ValueError (an option validator's error) when two share a name."""
    names = [m.name for m in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"{what}: names must be distinct, repeated: {sorted(dup)}")
    return specs


class FastTextModel:
    """A lazily loaded fastText model giving P(label) for a batch of already-flattened texts."""

    def __init__(self, path: str, filename: str | None = None) -> None:
        self.ref, self.filename = path, filename
        self._model = None
        self._labels: list[str] = []

    def __getstate__(self) -> dict:
        # the C++ model cannot be pickled; workers load it again on first use
        return {"ref": self.ref, "filename": self.filename, "_model": None, "_labels": []}

    @property
    def model(self):
        if self._model is None:
            import fasttext

            path = resolve_model_file(self.ref, self.filename)
            try:
                self._model = fasttext.load_model(path)
            except ValueError as e:
                raise ConfigError(f"fastText model {self.ref!r} ({path}) cannot be loaded: {e}") from None
            self._labels = list(self._model.get_labels())
        return self._model

    @property
    def labels(self) -> list[str]:
        _ = self.model
        return self._labels

    def check_label(self, label: str) -> None:
        if label not in self.labels:
            raise ConfigError(f"fastText model {self.ref!r} has labels {self.labels}; {label!r} is not one of them")

    def distributions(self, texts: Sequence[str]) -> tuple[list[tuple[str, ...]], list[np.ndarray]]:
        """Every label with its probability, best first, for each text (one predict call)."""
        labels, probs = self.model.predict(list(texts), k=-1, threshold=0.0)
        return labels, probs

    def line_distributions(self, lines: Sequence[str]) -> tuple[list[list[str]], list[np.ndarray]]:
        """`distributions` of texts already flattened to one line each and ending with "\\n" (`flatten_lines`)."""
        # fastText's Python predict(list) checks each text for "\n", appends one and calls this
        return self.model.f.multilinePredict(lines if isinstance(lines, list) else list(lines), -1, 0.0, "strict")

    def prob(self, texts: Sequence[str], label: str) -> list[float]:
        """P(label) for each text."""
        return self.prob_and_top(texts, label)[0]

    def prob_and_top(self, texts: Sequence[str], label: str, lines: bool = False) -> tuple[list[float], list[str]]:
        """P(label) and the top-1 label for each text (`lines`: texts from `flatten_lines`)."""
        self.check_label(label)
        labels, probs = self.line_distributions(texts) if lines else self.distributions(texts)
        return (
            [label_probability(labs, ps, label) for labs, ps in zip(labels, probs)],
            [labs[0] if labs else "" for labs in labels],
        )


def flatten_all(texts: Sequence[str], modes: set[str]) -> dict[str, list[str]]:
    """Each preprocessing mode applied once to the batch."""
    return {m: [preprocess(t, m) for t in texts] for m in modes}


def flatten_lines(texts: Sequence[str], modes: set[str]) -> dict[str, list[str]]:
    """`flatten_all` with "\\n" after each text: the line fastText's predict passes to its predictor
    (neither mode leaves a "\\n" inside: splitlines() and replace remove them all)."""
    return {m: [preprocess(t, m) + "\n" for t in texts] for m in modes}


class QualityScorer:
    """Several quality models over one batch: {column: [P(label) per text]}."""

    def __init__(self, specs: Sequence[FastTextModelSpec]) -> None:
        names = [s.out_column for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"two fastText models write the same column ({names}); give each a distinct name")
        self.specs = list(specs)
        self.models = [FastTextModel(s.path, s.filename) for s in specs]

    def score(self, texts: Sequence[str], flat: dict[str, list[str]] | None = None) -> dict[str, list[float]]:
        flat = flat or flatten_all(texts, {s.preprocess for s in self.specs})
        return {s.out_column: m.prob(flat[s.preprocess], s.label) for s, m in zip(self.specs, self.models)}

    def score_lines(self, lines: dict[str, list[str]]) -> dict[str, list[float]]:
        """`score` of the batch that `flatten_lines` gave `lines` (the same floats)."""
        return {
            s.out_column: m.prob_and_top(lines[s.preprocess], s.label, lines=True)[0]
            for s, m in zip(self.specs, self.models)
        }


class CategoryScorer:
    """Category models over one batch: per-category scores, the categories that said yes."""

    def __init__(self, specs: Sequence[CategoryModelSpec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"two category models have the same name ({names})")
        self.specs = list(specs)
        self.models = [FastTextModel(s.path, s.filename) for s in specs]

    def score(
        self, texts: Sequence[str], flat: dict[str, list[str]] | None = None
    ) -> tuple[dict[str, list[float]], list[list[str]]]:
        """({cat_<name>: [1 - P(negative)]}, [[categories whose top label is not negative] per text])."""
        flat = flat or flatten_all(texts, {s.preprocess for s in self.specs})
        return self._score(flat, len(texts), lines=False)

    def score_lines(self, lines: dict[str, list[str]], n: int) -> tuple[dict[str, list[float]], list[list[str]]]:
        """`score` of the `n` texts that `flatten_lines` gave `lines` (the same answer)."""
        return self._score(lines, n, lines=True)

    def _score(self, flat: dict[str, list[str]], n: int, lines: bool) -> tuple[dict[str, list[float]], list[list[str]]]:
        scores: dict[str, list[float]] = {}
        said: list[list[str]] = [[] for _ in range(n)]
        for spec, model in zip(self.specs, self.models):
            p_neg, tops = model.prob_and_top(flat[spec.preprocess], spec.negative_label, lines=lines)
            scores[spec.out_column] = [1.0 - p for p in p_neg]
            for i, top in enumerate(tops):
                if top != spec.negative_label:
                    said[i].append(spec.name)
        return scores, said
