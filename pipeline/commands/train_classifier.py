"""`curate train-classifier`: train a binary fastText classifier from labelled jsonl and report held-out scores.

    # a label field (here DCLM's human labels): train on majority minus agreement, test on agreement
    curate train-classifier --input tests/data/dclm-human-quality/majority_data.jsonl \\
        --eval tests/data/dclm-human-quality/agreement_data.jsonl --label-field label --positive-value 1 \\
        --output quality.ftz --quantize

    # positive and negative files; 20% of each held out (seeded)
    curate train-classifier --positive good.jsonl --negative bad.jsonl --holdout 0.2 --output model.bin
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError
from curate.filters.classifier_options import QUANTIZE_CUTOFF, TrainParams

from .flags import add_option_flags, default_of, options_from_args

# TrainParams fields given as flags of the "model" group (defaults and help come from the dataclass)
MODEL_OPTIONS = ("preprocess", "epoch", "lr", "word_ngrams", "dim", "min_count", "bucket")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train-classifier",
        help="train a fastText classifier from labelled jsonl",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("data (either --input with a label field, or --positive and --negative files)")
    src.add_argument("--input", action="append", default=[], help="jsonl(.gz) with text and label fields (repeatable)")
    src.add_argument("--label-field", default="label", help="field holding the label (default: label)")
    src.add_argument(
        "--positive-value",
        action="append",
        default=None,
        help="label value(s) meaning positive (default: 1); every other value is negative",
    )
    src.add_argument("--positive", action="append", default=[], help="jsonl(.gz) of positive documents (repeatable)")
    src.add_argument("--negative", action="append", default=[], help="jsonl(.gz) of negative documents (repeatable)")
    src.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    ev = p.add_argument_group("evaluation")
    ev.add_argument(
        "--eval",
        action="append",
        default=[],
        help="held-out jsonl with the same label field; its texts are removed from training",
    )
    ev.add_argument(
        "--holdout", type=float, default=0.2, help="fraction held out per class when no --eval (default 0.2)"
    )
    add_option_flags(ev, TrainParams, ["seed"])
    ev.add_argument("--threshold", type=float, default=0.5, help="P(positive) at or above which a doc counts positive")
    m = p.add_argument_group("model")
    m.add_argument("--output", required=True, help="model path (.bin, or .ftz with --quantize)")
    m.add_argument("--quantize", action="store_true", help="quantize (much smaller .ftz, similar accuracy)")
    m.add_argument(
        "--cutoff", type=int, default=QUANTIZE_CUTOFF, help="rows kept when quantizing (default %(default)s)"
    )
    labels = [default_of(TrainParams, "positive_label"), default_of(TrainParams, "negative_label")]
    m.add_argument(
        "--labels",
        nargs=2,
        default=labels,
        metavar=("POSITIVE", "NEGATIVE"),
        help=f"label names written to the model (default: {' '.join(labels)}, as DCLM / GneissWeb)",
    )
    add_option_flags(m, TrainParams, MODEL_OPTIONS)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(fn=cmd_train_classifier)


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from curate.filters import training as T  # fastText and datatrove load when the command runs

    if bool(args.input) == bool(args.positive or args.negative):
        raise ConfigError("give either --input (with --label-field) or --positive and --negative files")
    if (args.positive or args.negative) and not (args.positive and args.negative):
        raise ConfigError("--positive and --negative go together")
    if not 0 < args.holdout < 1:
        raise ConfigError(f"--holdout must be between 0 and 1 (got {args.holdout})")
    for path in args.input + args.positive + args.negative + args.eval:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file")
    if args.quantize and not args.output.endswith(".ftz"):
        raise ConfigError("--quantize writes a .ftz model: name the output *.ftz")
    positives = args.positive_value or ["1"]
    if args.input:
        examples = T.labelled_examples(args.input, args.text_field, args.label_field, positives)
    else:
        examples = T.file_examples(args.positive, args.text_field, True) + T.file_examples(
            args.negative, args.text_field, False
        )
    if args.eval:
        held = T.labelled_examples(args.eval, args.text_field, args.label_field, positives)
        train = T.remove_overlap(examples, held)
        split = f"--eval: {len(held)} held out, {len(examples) - len(train)} of their texts removed from training"
    else:
        train, held = T.split_holdout(examples, args.holdout, args.seed)
        split = f"seeded split (seed {args.seed}): {len(held)} held out ({args.holdout:.0%} of each class)"
    if not any(y for _, y in train) or all(y for _, y in train):
        raise ConfigError("training data needs both positive and negative documents (check --positive-value)")
    params = TrainParams(
        **options_from_args(args, TrainParams, (*MODEL_OPTIONS, "seed")),
        positive_label=args.labels[0],
        negative_label=args.labels[1],
    )
    model = T.train(train, params, quantize=args.quantize, cutoff=args.cutoff)
    metrics = T.evaluate(model, held, params, args.threshold)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))
    report = {
        "train": len(train),
        "train_positives": sum(y for _, y in train),
        "split": split,
        "held_out": metrics.as_dict(),
        "model": str(out),
        "bytes": out.stat().st_size,
        "labels": [f"__label__{x}" for x in args.labels],
        "lr_used": params.lr_used,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        h = metrics
        print(f"trained on {len(train)} docs ({report['train_positives']} positive); {split}")
        print(
            f"held-out ({h.n} docs, {h.positives} positive, P(__label__{args.labels[0]}) >= {args.threshold}): "
            f"precision {h.precision:.3f}  recall {h.recall:.3f}  F1 {h.f1:.3f}  accuracy {h.accuracy:.3f}  "
            f"ROC AUC {h.auc:.3f}"
        )
        print(f"wrote {out} ({report['bytes']:,} bytes)")
    return 0
