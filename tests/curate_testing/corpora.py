"""Generated and planted test corpora: a Unicode fuzz for tokenizers, near-duplicates for MinHash."""

from __future__ import annotations

import numpy as np

# code point ranges: scripts, symbols, emoji and the odd ones a tokenizer can trip on
SCRIPTS = {
    "latin": [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F)],
    "greek": [(0x391, 0x3C9)],
    "cyrillic": [(0x410, 0x44F)],
    "arabic": [(0x621, 0x64A), (0x660, 0x669)],
    "hebrew": [(0x5D0, 0x5EA)],
    "devanagari": [(0x905, 0x939), (0x93E, 0x94D)],
    "thai": [(0xE01, 0xE3A)],
    "cjk": [(0x4E00, 0x9FFF)],
    "kana": [(0x3041, 0x30FF)],
    "hangul": [(0xAC00, 0xD7A3)],
    "ethiopic": [(0x1200, 0x1248)],
    "digits": [(0x30, 0x39), (0xFF10, 0xFF19), (0x6F0, 0x6F9)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x2010, 0x205E)],
    "emoji": [(0x1F300, 0x1F64F), (0x1F900, 0x1F9FF), (0x2600, 0x26FF)],
    "astral": [(0x10000, 0x1007F), (0x1D400, 0x1D7FF), (0x10FFF0, 0x10FFFF)],
}
CONTROL = [
    chr(c)
    for c in [
        *range(0, 32),
        0x7F,
        *range(0x80, 0xA0),
        0x200B,
        0x200D,
        0x200E,
        0xFEFF,
        0x2028,
        0x2029,
        0xFFFE,
        0xFFFF,
        0xE000,
        0xFFFD,
    ]
]
COMBINING = [chr(c) for c in [*range(0x300, 0x370), *range(0x20D0, 0x20F1), 0x93C, 0xE31, 0x3099, 0xFE0F, 0xFE0E]]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "\u00a0", "\u3000", "\u2009", " \n ", "\x0b", "\x0c"]
PIECES = [
    "<|endoftext|>",
    "<|endoftext|>",
    " <|endoftext|>",
    "<|endof",
    "|>",
    "<|",
    "'s",
    "'ll",
    "'ve",
    "n't",
    "'S",
    "'re",
    "'d",
    "'m",
    "👩\u200d💻",
    "👍🏽",
    "🇫🇷",
    "❤️",
    "e\u0301",
    "ﬁ",
    "Å",
    "ǅ",
    "ß",
    "İ",
    "http://x.y/z?a=1&b=2",
    "...",
    "—",
]


def fuzz_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    names = list(SCRIPTS)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(int(rng.integers(1, 40))):
            r = rng.random()
            if r < 0.45:
                lo, hi = SCRIPTS[names[int(rng.integers(len(names)))]][0 if rng.random() < 0.5 else -1]
                parts.append("".join(chr(int(c)) for c in rng.integers(lo, hi + 1, int(rng.integers(1, 12)))))
            elif r < 0.65:
                parts.append(SPACES[int(rng.integers(len(SPACES)))])
            elif r < 0.75:
                parts.append(CONTROL[int(rng.integers(len(CONTROL)))])
            elif r < 0.85:
                parts.append(COMBINING[int(rng.integers(len(COMBINING)))] * int(rng.integers(1, 4)))
            else:
                parts.append(PIECES[int(rng.integers(len(PIECES)))])
        out.append("".join(parts))
    out += [
        "",
        " ",
        "<|endoftext|>",
        "<|endoftext|><|endoftext|>",
        "a<|endoftext|>b",
        "\u0301" * 50,
        "🏳️‍🌈" * 20,
        "x" * 5000,
        " " * 300 + "y",
        "日本語" * 500,
    ]
    return out


SURROGATES = ["x\ud800y", "\udfff", "ok \ud83d then", "\udc80\udc80"]


def edit_words(text: str, rate: float, rng: np.random.Generator, vocab: list[str]) -> str:
    words = text.split()
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # delete
        if r < 2 * rate / 3:
            out.append(vocab[int(rng.integers(len(vocab)))])  # substitute
            continue
        out.append(w)
        if r < rate:
            out.append(vocab[int(rng.integers(len(vocab)))])  # insert
    return " ".join(out)


def planted_near_dups(c4: list[dict], rates: list[float], per_rate: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = [r["text"] for r in c4 if len(r["text"].split()) >= 150]
    vocab = sorted({w for t in base for w in t.split()})
    docs, pairs = [], []  # pairs: (original id, copy id, rate)
    for i, t in enumerate(base):
        docs.append({"id": f"o{i}", "text": t})
    k = 0
    for rate in rates:
        for _ in range(per_rate):
            i = k % len(base)
            k += 1
            docs.append({"id": f"c{i}_{rate}", "text": edit_words(base[i], rate, rng, vocab)})
            pairs.append((f"o{i}", f"c{i}_{rate}", rate))
    order = rng.permutation(len(docs))
    return [docs[j] for j in order], pairs


def near_dup_scores(docs, pairs, result) -> tuple[float, dict[float, float]]:
    kept = {d.id for d in result.docs}
    dropped = {d["id"] for d in docs} - kept
    in_pair = {x for o, c, _ in pairs for x in (o, c)}
    precision = len(dropped & in_pair) / max(1, len(dropped))
    recall = {}
    for rate in sorted({r for *_, r in pairs}):
        ps = [(o, c) for o, c, r in pairs if r == rate]
        recall[rate] = sum((o in dropped) != (c in dropped) for o, c in ps) / len(ps)
    return precision, recall
