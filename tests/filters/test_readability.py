"""McAlpine-EFLAW: hand-worked examples and agreement with textstat on every document of the sample."""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pytest

from curate.filters import readability
from curate.filters.readability import (
    _fast_counts,
    count_miniwords,
    count_sentences,
    count_words,
    mcalpine_eflaw,
    mcalpine_eflaw_batch,
    mcalpine_eflaw_reference,
)


@pytest.mark.parametrize(
    "text, words, mini, sentences, eflaw",
    [
        # 13 words; 12 of <= 3 chars (all but "good"); 2 sentences -> 25 / 2
        ("The cat sat on the mat. It was a good day for it!", 13, 12, 2, 12.5),
        # "Hi." has <= 2 words and is not a sentence; 7 words, 1 mini ("Hi") -> 8 / 1
        ("Hi. Photosynthesis converts sunlight into chemical energy.", 7, 1, 1, 8.0),
        # contraction apostrophes stay in words, quotes go; "Don't stop." (2 words) is ignored;
        # miniwords drop every apostrophe: "Its" and "now" have <= 3 chars ("Dont" has 4) -> (7 + 2) / 1
        ("Don't stop. It's 'quoted' text here now.", 7, 2, 1, 9.0),
        # hyphens are removed, not split: "well-known" is one word; "a-b" becomes "ab" (mini)
        ("A well-known a-b test is run here.", 7, 4, 1, 11.0),
        ("", 0, 0, 0, 0.0),
        # no word characters: 0 matches, but a non-empty text has at least 1 sentence
        ("... !!!", 0, 0, 1, 0.0),
    ],
)
def test_hand_worked(text: str, words: int, mini: int, sentences: int, eflaw: float) -> None:
    assert count_words(text) == words
    assert count_miniwords(text) == mini
    assert count_sentences(text) == sentences
    assert mcalpine_eflaw(text) == pytest.approx(eflaw)
    assert _fast_counts(text) == (words, mini, sentences)
    assert mcalpine_eflaw_batch([text]) == [mcalpine_eflaw(text)]


def test_matches_textstat_on_real_documents(sample_dir: Path) -> None:
    metrics = pytest.importorskip("textstat.backend.metrics", reason="textstat is in the test extras")
    docs = [json.loads(line)["text"] for f in sorted(sample_dir.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    assert len(docs) == 1697
    expected = [metrics.mcalpine_eflaw(d) for d in docs]
    # the fast kernel and the step-by-step reference, each exactly textstat's float on every document
    assert [i for i, (d, e) in enumerate(zip(docs, expected)) if mcalpine_eflaw(d) != e] == []
    assert [i for i, (d, e) in enumerate(zip(docs, expected)) if mcalpine_eflaw_reference(d) != e] == []
    # the batch kernel: the whole sample at once, and in the stage's batches of 256
    assert [i for i, (g, e) in enumerate(zip(mcalpine_eflaw_batch(docs), expected)) if g != e] == []
    batched = [x for i in range(0, len(docs), 256) for x in mcalpine_eflaw_batch(docs[i : i + 256])]
    assert batched == expected
    # and the scores are not degenerate
    assert len({round(mcalpine_eflaw(d), 3) for d in docs[:200]}) > 100


def test_character_classes_the_fast_kernel_relies_on() -> None:
    """Over every code point: no character is both \\w and \\s, and str.split() splits on exactly \\s."""
    every = "".join(map(chr, range(0x110000)))
    assert re.findall(r"(?=\w)\s", every) == []
    assert re.findall(r"\s", every) == [c for c in every if c.isspace()]
    # the batch kernel's table gives each code point re's class
    table = readability._class_table()
    assert len(table) == 0x110001 and table[readability._BREAK_CODE] == readability._BREAK
    for cls, pattern in ((readability._WORD, r"\w"), (readability._SPACE, r"\s"), (readability._END, r"[.!?]")):
        assert [c for c in every if table[ord(c)] == cls] == re.findall(pattern, every)


# characters that move textstat's counts: contraction endings after apostrophes, sentence ends,
# Unicode whitespace (NBSP, line separator, the \x1c-\x1f separators), letters and digits of other
# scripts, combining marks, underscore, hyphens, emoji, quotes
_FUZZ_ALPHABET = (
    list("aeiostdvlrAZ09_")
    + ["'", "'s", "'t", "'ve", "'ll", "'re", "'d", "'m"]
    + list(".!?.!?")
    + [" ", " ", " ", "\n", "\t", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\u00a0", "\u2028", "\u3000"]
    + [
        "é",
        "ß",
        "Ж",
        "ж",
        "中",
        "ع",
        "٣",
        "\u0301",
        "-",
        "—",
        ",",
        ";",
        '"',
        "(",
        ")",
        "…",
        "🙂",
        "\u200d",
        "...",
        " - ",
        "a.b",
        "Mr. ",
        "U.S. ",
    ]
)


def test_fast_kernel_equals_reference_and_textstat_on_fuzz() -> None:
    try:
        from textstat.backend.metrics import mcalpine_eflaw as textstat_eflaw
    except ImportError:  # textstat is in the test extras; the reference alone is still checked
        textstat_eflaw = mcalpine_eflaw_reference
    rng = random.Random(14)
    for _ in range(4000):
        text = "".join(rng.choices(_FUZZ_ALPHABET, k=rng.randint(0, 60)))
        assert _fast_counts(text) == (count_words(text), count_miniwords(text), count_sentences(text)), repr(text)
        assert mcalpine_eflaw(text) == mcalpine_eflaw_reference(text) == textstat_eflaw(text), repr(text)


def test_batch_kernel_equals_reference_on_fuzz(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many short texts in one batch: every document boundary must stop words and sentences."""
    rng = random.Random(1414)
    texts = ["".join(rng.choices(_FUZZ_ALPHABET, k=rng.randint(0, 40))) for _ in range(3000)]
    # and what a document can hold beyond the alphabet: astral characters, lone surrogates, no text at all
    texts += ["", "\ud800 ab cd ef.", "𝐀𝐁𝐂 x y z! \U0010ffff", "", "a b c", "... ???", "\x00 a. b c d e."]
    expected = [mcalpine_eflaw_reference(t) for t in texts]
    assert mcalpine_eflaw_batch(texts) == expected
    assert mcalpine_eflaw_batch([]) == []
    # split into several passes, with the longer documents counted alone
    monkeypatch.setattr(readability, "_BATCH_CHARS", 200)
    monkeypatch.setattr(readability, "_LONG_DOC", 35)
    assert mcalpine_eflaw_batch(texts) == expected
