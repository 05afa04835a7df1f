"""GPT-2 tokenizer candidates on the whole ESD benchmark corpus: MB/s and ids against HF `tokenizers`.

    python scripts/bench/esd_tokenizers.py [--mb 100]

Each candidate of dedup/tokenize.py SPEED_ORDER that is installed encodes every document (special-token
text as ordinary text where the library allows it); a document counts as a mismatch when its ids differ
from HF `tokenizers` (`encode_special_tokens`), the reference, in any position.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    from esd import corpus, read_texts

    from curate.dedup.tokenize import SPEED_ORDER, candidate_encoder, candidate_installed

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100)
    a = ap.parse_args()
    texts = read_texts(corpus(a.mb))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    t0 = time.perf_counter()
    ref = candidate_encoder("tokenizers")(texts)
    ref_s = time.perf_counter() - t0
    print(f"{len(texts)} docs, {mb:.1f} MB; HF tokenizers (reference): {mb / ref_s:.1f} MB/s")
    for name in SPEED_ORDER:
        if not candidate_installed(name):
            print(f"{name:10} not installed")
            continue
        enc = candidate_encoder(name)
        t0 = time.perf_counter()
        got = enc(texts)
        dt = time.perf_counter() - t0
        bad = sum(len(g) != len(r) or bool((g != r).any()) for g, r in zip(got, ref))
        print(f"{name:10} {mb / dt:7.1f} MB/s  x{ref_s / dt:5.1f} HF  documents with other ids: {bad}", flush=True)


if __name__ == "__main__":
    main()
