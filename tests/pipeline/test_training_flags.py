"""`curate train-classifier` and `curate refiner train` take their training options from the option
dataclasses (filters/classifier_options.py, refiners/train_options.py): each default is stated once."""

from __future__ import annotations

import argparse
import dataclasses

from curate.filters.classifier_options import QUANTIZE_CUTOFF, TrainParams
from curate.pipeline.cli import build_parser
from curate.pipeline.commands.refiner import TRAIN_OPTIONS
from curate.pipeline.commands.train_classifier import MODEL_OPTIONS
from curate.refiners.train_options import TrainConfig


def _defaults(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_train_classifier_defaults_are_the_model_defaults() -> None:
    args = _defaults(["train-classifier", "--positive", "p.jsonl", "--negative", "n.jsonl", "--output", "m.bin"])
    model = TrainParams()
    for name in (*MODEL_OPTIONS, "seed"):
        assert getattr(args, name) == getattr(model, name), name
    assert args.labels == [model.positive_label, model.negative_label]
    assert args.cutoff == QUANTIZE_CUTOFF
    assert (model.dim, model.bucket) == (16, 20_000)  # the sizes the sample and test models are trained with


def test_refiner_train_defaults_are_the_model_defaults() -> None:
    args = _defaults(["refiner", "train", "--data", "d", "--output", "o", "--preset", "tiny"])
    model = TrainConfig(data=["d"], output="o")
    for name in TRAIN_OPTIONS:
        assert getattr(args, name) == getattr(model, name), name


def test_a_flag_reaches_the_model_field() -> None:
    args = _defaults(
        ["refiner", "train", "--data", "d", "--output", "o", "--preset", "tiny", "--no-length-grouping"]
        + ["--max-time", "30", "--epochs", "0.5", "--no-progress", "--stage", "doc"]
    )
    assert (args.group_by_length, args.max_time_s, args.epochs, args.progress, args.stage) == (
        False,
        30.0,
        0.5,
        False,
        "doc",
    )
    args = _defaults(["train-classifier", "--input", "a.jsonl", "--output", "m.bin", "--dim", "64", "--lr", "0.1"])
    assert (args.dim, args.lr, args.bucket) == (64, 0.1, 20_000)


def test_every_flag_field_has_help() -> None:
    for cls, names in ((TrainParams, (*MODEL_OPTIONS, "seed")), (TrainConfig, TRAIN_OPTIONS)):
        for f in dataclasses.fields(cls):
            if f.name in names:
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name}"
