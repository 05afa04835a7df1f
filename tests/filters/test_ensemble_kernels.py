"""`gneissweb_ensemble`'s fast kernel writes exactly the reference kernel's columns, on the bundled sample.

fast: token counts from fastokens (bundled GPT-2 only, overlapped with fastText) and the batch EFLAW;
reference: HF `tokenizers` and EFLAW step by step as textstat does it (tests/filters/test_readability.py
compares the EFLAWs with textstat itself). fastText is the same official wheel in both; its columns
are also checked against a direct `predict` call here.
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
from pathlib import Path

import fasttext
import pytest
from curate_testing import REPO

from curate.core import fastokens as core_fastokens
from curate.filters.fasttext_scoring import label_probability, preprocess
from curate.filters.gneissweb_recipe import GNEISSWEB_CLAUSES, GNEISSWEB_KEEP, GNEISSWEB_PARAMS
from curate.filters.rule import Rule
from curate.filters.token_counts import TokenCounter, is_bundled_gpt2
from curate.pipeline import run_stages

GPT2 = REPO / "dedup" / "assets" / "gpt2" / "tokenizer.json"
MODELS = REPO / "filters" / "assets" / "models"
CATS = ("medical", "education", "technology", "science")
# what a document can hold that tokenizers treat specially: the special token typed as text, empty and
# whitespace-only texts, control characters, emoji with ZWJ, combining marks, long runs
EDGE_TEXTS = [
    "",
    " ",
    "\n\n\n",
    "<|endoftext|>",
    "a<|endoftext|>b <|endoftext|><|endoftext|>",
    "<|endoftext",
    "\x00\x01\x1f\x7f",
    "👩\u200d💻 🙂🙂",
    "e\u0301\u0301",
    "x" * 5000,
    " " * 300 + "y",
    "中文字符 العربية Ελληνικά",
]


@pytest.fixture(scope="module")
def sample_texts(sample_dir: Path) -> list[str]:
    texts = [json.loads(line)["text"] for f in sorted(sample_dir.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    assert len(texts) == 1697
    return texts


def test_fastokens_counts_equal_hf_on_every_sample_doc(sample_texts: list[str]) -> None:
    fast, ref = TokenCounter(str(GPT2)), TokenCounter(str(GPT2), engine="tokenizers")
    texts = sample_texts + EDGE_TEXTS
    assert fast.count(texts) == ref.count(texts)
    assert fast.engine == "fastokens" and ref.engine == "tokenizers"


def test_fast_engine_only_for_the_bundled_gpt2(tmp_path: Path) -> None:
    assert is_bundled_gpt2(str(GPT2))
    copy = tmp_path / "copy.json"
    shutil.copy(GPT2, copy)
    assert is_bundled_gpt2(str(copy))  # same JSON elsewhere: same tokenizer
    folder = TokenCounter(str(GPT2.parent))
    folder.load()
    assert folder.engine == "fastokens"
    # any other tokenizer (here GPT-2 with one more added token) stays on HF tokenizers
    spec = json.loads(GPT2.read_text(encoding="utf-8"))
    spec["added_tokens"].append({**spec["added_tokens"][0], "id": 50257, "content": "<|pad|>"})
    other = tmp_path / "other.json"
    other.write_text(json.dumps(spec), encoding="utf-8")
    assert not is_bundled_gpt2(str(other))
    counter = TokenCounter(str(other))
    assert counter.count(["hello <|pad|>"]) == [3]
    assert counter.engine == "tokenizers"
    assert not is_bundled_gpt2(str(tmp_path / "missing.json"))


def test_fastokens_reload_keeps_counts(monkeypatch: pytest.MonkeyPatch, sample_texts: list[str]) -> None:
    # a fresh tokenizer once ~100 kB of text went through (the memory bound) gives the same counts
    monkeypatch.setattr(core_fastokens, "RELOAD_CHARS", 100_000)
    fast, ref = TokenCounter(str(GPT2)), TokenCounter(str(GPT2), engine="tokenizers")
    texts = sample_texts[:90]
    fast.load()
    got = [n for i in range(0, len(texts), 30) for n in fast.count(texts[i : i + 30])]
    assert fast._fast is not None and fast._fast.loads > 1  # it did reload
    assert got == ref.count(texts)


def _stage(kernel: str) -> dict:
    return {
        "stage": "gneissweb_ensemble",
        "kernel": kernel,
        "batch_size": 128,
        "quality_models": [
            {"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "preprocess": "dclm"},
            {"name": "cosmo", "path": str(MODELS / "quality_cosmo.ftz"), "preprocess": "newlines"},
        ],
        "category_models": [{"name": c, "path": str(MODELS / f"category_{c}.ftz")} for c in CATS],
        "tokenizer": str(GPT2),
    }


def test_stage_fast_kernel_equals_reference(sample_texts: list[str]) -> None:
    texts = sample_texts[::3] + EDGE_TEXTS[1:]  # ~580 real documents (the reader drops empty texts)
    # annotate_only keeps every document, so every column of every document is compared
    fast = run_stages(texts, [{**_stage("fast"), "annotate_only": True}])
    ref = run_stages(texts, [{**_stage("reference"), "annotate_only": True}])
    assert len(fast.docs) == len(texts)
    assert [d.id for d in fast.docs] == [d.id for d in ref.docs]
    assert [d.metadata for d in fast.docs] == [d.metadata for d in ref.docs]  # exact floats, counts, categories
    # with the rule: the fast stage keeps exactly what the rule keeps on the reference columns
    kept = run_stages(texts, [_stage("fast")])
    rule = Rule(GNEISSWEB_KEEP, GNEISSWEB_CLAUSES, GNEISSWEB_PARAMS)
    expected = [d.id for d in ref.docs if rule.evaluate(d.metadata)[0]]
    assert [d.id for d in kept.docs] == expected and 100 < len(expected) < len(texts) - 50
    # fastText columns are official fastText's P(label) on the flattened text
    dclm = fasttext.load_model(str(MODELS / "quality_dclm.ftz"))
    for d in fast.docs[:50]:
        labels, probs = dclm.predict(preprocess(d.text, "dclm"), k=-1, threshold=0.0)
        assert d.metadata["ft_dclm"] == label_probability(labels, probs, "__label__hq")


def test_fast_kernel_waits_for_late_token_counts(monkeypatch: pytest.MonkeyPatch, sample_texts: list[str]) -> None:
    # the fast kernel lets up to MAX_PENDING batches wait for their token counts; with a slow counter
    # the backlog fills, and documents still come out in order with every column and the rule applied
    from curate.filters.stages import gneissweb_ensemble

    texts = sample_texts[:150]
    ref = run_stages(texts, [{**_stage("reference"), "batch_size": 7}])
    count = TokenCounter.count

    def slow_count(self: TokenCounter, batch: list[str]) -> list[int]:
        time.sleep(0.02)
        return count(self, batch)

    monkeypatch.setattr(TokenCounter, "count", slow_count)
    monkeypatch.setattr(gneissweb_ensemble, "MAX_PENDING", 2)
    fast = run_stages(texts, [{**_stage("fast"), "batch_size": 7}])
    assert [d.id for d in fast.docs] == [d.id for d in ref.docs] and 20 < len(ref.docs) < 150
    assert [d.metadata for d in fast.docs] == [d.metadata for d in ref.docs]
    assert fast.stats[-1]["dropped"] == ref.stats[-1]["dropped"] and fast.stats[-1]["conserved"]
