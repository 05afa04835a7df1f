"""Seeded generator of realistic exact-substring-dedup corpora from the bundled real text, with ground truth.

Documents are built from the bundled sample's real words: each document is a sequence of short
passages (consecutive words worth 12-30 GPT-2 tokens, counted per word: GPT-2 pre-tokenizes at
spaces) taken from random places of the real text, so every 50-token window spans at least two
independent passages and is new text, while words, scripts, punctuation and token statistics stay
those of web text. (Passages of a fixed number of words would not do: 25 words of Korean or
Burmese are well over 50 tokens, and the sample's few MB get drawn from many times over.) Then duplicate spans are planted: a span
of 80-300 words (~100-400 tokens) copied from an earlier document into a later one at a word
boundary; the ground truth lists (destination doc, span text).

    python scripts/esd_corpus.py --mb 25 --seed 0 --out /tmp/esd25.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Plant:
    src: int
    dst: int
    text: str


def real_words() -> list[str]:
    words: list[str] = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                words.extend(json.loads(line)["text"].split())
    return words


def generate(mb: float, seed: int = 0, plant_rate: float = 0.3) -> tuple[list[str], list[Plant]]:
    """Documents totalling ~`mb` MB of UTF-8 text, and the planted duplicate spans."""
    from curate.dedup.tokenize import get_tokenizer

    rng = np.random.default_rng(seed)
    words = real_words()
    uniq = sorted(set(words))
    counts = dict(
        zip(uniq, map(len, get_tokenizer(engine="tiktoken")._enc.encode_ordinary_batch([" " + w for w in uniq])))
    )
    words = [
        w for w in words if counts[w] <= 12
    ]  # a single very long "word" (a URL, a run of CJK) would be a repeat by itself
    wa = np.array(words, dtype=object)
    cum = np.concatenate(([0], np.cumsum([counts[w] for w in words])))  # tokens before word i
    target = int(mb * 1e6)
    docs: list[str] = []
    plants: list[Plant] = []
    size = 0
    while size < target:
        n_pass = int(rng.integers(15, 40))
        budget = rng.integers(12, 31, n_pass)
        starts = rng.integers(0, len(words) - 40, n_pass)
        ends = np.maximum(np.searchsorted(cum, cum[starts] + budget, side="right") - 1, starts + 1)
        passages = [" ".join(wa[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
        text = "\n".join(" ".join(passages[i : i + 4]) for i in range(0, n_pass, 4))
        if docs and rng.random() < plant_rate:
            src = int(rng.integers(max(0, len(docs) - 5000), len(docs)))
            sw = docs[src].split(" ")
            n = int(rng.integers(80, 301))
            if len(sw) > n + 1:
                a = int(rng.integers(0, len(sw) - n))
                span = " ".join(sw[a : a + n])
                cut = text.find(" ", int(rng.integers(0, len(text))))
                cut = len(text) if cut < 0 else cut
                text = text[:cut] + " " + span + " " + text[cut:]
                plants.append(Plant(src, len(docs), span))
        docs.append(text)
        size += len(text.encode())
    return docs, plants


def recall(out_texts: list[str], plants: list[Plant], edge_chars: int = 400) -> float:
    """Share of planted spans whose middle (all but `edge_chars` at each end) is gone from the destination."""
    hit = 0
    for p in plants:
        mid = (
            p.text[edge_chars:-edge_chars]
            if len(p.text) > 2 * edge_chars + 50
            else p.text[len(p.text) // 3 : 2 * len(p.text) // 3]
        )
        hit += mid not in out_texts[p.dst]
    return hit / max(1, len(plants))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    docs, plants = generate(a.mb, a.seed)
    with open(a.out, "w", encoding="utf-8") as fh:
        for i, t in enumerate(docs):
            fh.write(json.dumps({"id": str(i), "text": t}) + "\n")
    with open(a.out + ".plants.json", "w", encoding="utf-8") as fh:
        json.dump([p.__dict__ for p in plants], fh)
    print(
        f"{len(docs)} docs, {sum(len(t.encode()) for t in docs) / 1e6:.1f} MB, {len(plants)} planted spans -> {a.out}"
    )
