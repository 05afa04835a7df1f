#!/usr/bin/env python
"""Train the small fastText models the bundled sample's GneissWeb stage uses, into filters/assets/models/.

    python scripts/train_sample_models.py            # ~30 s on 2 cores; rewrites the .ftz files and METRICS.json

What is trained, on what (all real web text shipped in tests/data/, none of the bundled sample):

- quality_dclm.ftz  ("dclm"-like): DCLM's human quality labels (tests/data/dclm-human-quality),
  trained on majority_data minus agreement_data (218 docs), evaluated on agreement_data (281
  docs the annotators agreed on; never seen in training). Word bigrams, DCLM preprocessing
  (" ".join(text.strip().splitlines())), labels __label__hq / __label__cc.
- quality_cosmo.ftz ("cosmo"-like): the same human labels (we have no Cosmopedia data, which
  GneissWeb's annotator was trained on), unigrams and newline->space preprocessing, so it is a
  second, different opinion rather than a copy. Same held-out evaluation.
- category_{medical,education,technology,science}.ftz: weak labels from the keyword heuristic in
  curate/filters/weak_labels.py over C4 (c4-prefix-completion-1480, c4-realnewslike-500) and the
  DCLM documents; positives vs clearly off-topic negatives (__label__cc), negatives subsampled
  to 3x the positives; 20% held out per class (seeded). These mostly re-learn the keyword lists.

Every model is quantized (.ftz, cutoff 2000 rows) to stay small in git. Metrics go to
filters/assets/models/METRICS.json.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # noqa: E402  (run from a checkout without installing)

from curate.filters import training as T  # noqa: E402
from curate.filters.weak_labels import CATEGORY_KEYWORDS, weak_examples  # noqa: E402

DATA = REPO / "tests" / "data"
OUT = REPO / "filters" / "assets" / "models"
CUTOFF = 2000
SEED = 0


def quality_models() -> dict[str, dict]:
    d = DATA / "dclm-human-quality"
    majority = T.labelled_examples([str(d / "majority_data.jsonl")], "text", "label", ["1"])
    agreement = T.labelled_examples([str(d / "agreement_data.jsonl")], "text", "label", ["1"])
    train = T.remove_overlap(majority, agreement)
    variants = {
        "quality_dclm": T.TrainParams(word_ngrams=2, preprocess="dclm", seed=SEED),
        "quality_cosmo": T.TrainParams(word_ngrams=1, preprocess="newlines", seed=SEED),
    }
    report = {}
    for name, params in variants.items():
        model = T.train(train, params, quantize=True, cutoff=CUTOFF)
        path = OUT / f"{name}.ftz"
        model.save_model(str(path))
        m = T.evaluate(model, agreement, params)
        report[name] = {
            "train": len(train),
            "eval": "agreement_data.jsonl (held out)",
            "preprocess": params.preprocess,
            "word_ngrams": params.word_ngrams,
            "lr_used": params.lr_used,
            "held_out": m.as_dict(),
            "bytes": path.stat().st_size,
        }
        print(
            f"{name}: held-out F1 {m.f1:.3f} (P {m.precision:.3f} R {m.recall:.3f}, AUC {m.auc:.3f}), "
            f"{path.stat().st_size:,} bytes"
        )
    return report


def category_texts() -> list[str]:
    texts = []
    for line in (DATA / "c4-prefix-completion-1480" / "c4.jsonl").open():
        r = json.loads(line)
        texts.append(r["prefix"] + r["gold_completion"])
    for line in (DATA / "c4-realnewslike-500" / "c4.json").open():
        r = json.loads(line)
        texts.append(r["prompt"] + r["natural_text"])
    for line in (DATA / "dclm-human-quality" / "majority_data.jsonl").open():
        texts.append(json.loads(line)["text"])
    return texts


def category_models() -> dict[str, dict]:
    texts = category_texts()
    report = {}
    for cat in CATEGORY_KEYWORDS:
        examples = weak_examples(texts, cat, min_distinct=3)
        pos = [e for e in examples if e[1]]
        neg = [e for e in examples if not e[1]]
        random.Random(SEED).shuffle(neg)
        examples = pos + neg[: 3 * len(pos)]
        train, held = T.split_holdout(examples, 0.2, SEED)
        params = T.TrainParams(
            word_ngrams=2,
            preprocess="newlines",
            seed=SEED,
            positive_label=cat,
            negative_label="cc",
        )
        model = T.train(train, params, quantize=True, cutoff=CUTOFF)
        path = OUT / f"category_{cat}.ftz"
        model.save_model(str(path))
        m = T.evaluate(model, held, params)
        report[f"category_{cat}"] = {
            "train": len(train),
            "train_positives": sum(y for _, y in train),
            "eval": "20% of the weakly labelled docs (held out)",
            "held_out": m.as_dict(),
            "bytes": path.stat().st_size,
            "labels": [f"__label__{cat}", "__label__cc"],
        }
        print(
            f"category_{cat}: {len(pos)} weak positives; held-out F1 vs the weak labels {m.f1:.3f}, "
            f"{path.stat().st_size:,} bytes"
        )
    return report


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    report = {**quality_models(), **category_models()}
    (OUT / "METRICS.json").write_text(json.dumps(report, indent=2) + "\n")
    total = sum(r["bytes"] for r in report.values())
    print(f"wrote {len(report)} models, {total:,} bytes in all, to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
