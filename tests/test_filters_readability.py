"""McAlpine-EFLAW: hand-worked examples and agreement with textstat on every document of the sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from curate.filters.readability import count_miniwords, count_sentences, count_words, mcalpine_eflaw


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


def test_matches_textstat_on_real_documents(sample_dir: Path) -> None:
    metrics = pytest.importorskip("textstat.backend.metrics", reason="textstat is in the test extras")
    docs = [json.loads(line)["text"] for f in sorted(sample_dir.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    assert len(docs) == 1697
    mismatches = [i for i, d in enumerate(docs) if mcalpine_eflaw(d) != metrics.mcalpine_eflaw(d)]
    assert mismatches == []
    # and the scores are not degenerate
    assert len({round(mcalpine_eflaw(d), 3) for d in docs[:200]}) > 100
