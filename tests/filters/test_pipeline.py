"""The filters through run_stages: conservation, drop-by-clause stats, stage equivalence, heuristics, the CLI."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import fasttext
import pytest

from curate.filters.gneissweb_recipe import GNEISSWEB_CLAUSES, GNEISSWEB_KEEP, GNEISSWEB_PARAMS
from curate.filters.rule import Rule
from curate.pipeline import run_stages
from curate.pipeline.cli import main as curate_main
from curate.pipeline.config import load_config

CATS = ("medical", "education", "technology", "science")


@pytest.fixture(scope="module")
def sample_docs(sample_dir: Path) -> list[dict]:
    docs = []
    for f in sorted(sample_dir.glob("*.jsonl.gz")):
        for i, line in enumerate(gzip.open(f, "rt")):
            if i % 4 == 0:  # every 4th doc of both sources: ~420 real documents
                docs.append({"id": f"{f.name}/{i}", "text": json.loads(line)["text"]})
    return docs


def ensemble_stage(models: dict[str, str], repo: Path, **extra) -> dict:
    return {
        "stage": "gneissweb_ensemble",
        "quality_models": [
            {"name": "dclm", "path": models["dclm"], "preprocess": "dclm"},
            {"name": "cosmo", "path": models["cosmo"], "preprocess": "newlines"},
        ],
        "category_models": [{"name": c, "path": models[c]} for c in CATS],
        "tokenizer": str(repo / "dedup" / "assets" / "gpt2" / "tokenizer.json"),
        "batch_size": 64,
        **extra,
    }


def test_ensemble_conservation_and_drops_by_clause(filters_models, repo_root, sample_docs) -> None:
    # thresholds raised so that both FT and READ/EXT drop documents of this sample
    params = {"dclm_min": 0.5, "cosmo_min": 0.5}
    annotated = run_stages(sample_docs, [ensemble_stage(filters_models, repo_root, annotate_only=True)])
    assert len(annotated.docs) == len(sample_docs)
    rule = Rule(GNEISSWEB_KEEP, GNEISSWEB_CLAUSES, {**GNEISSWEB_PARAMS, **params})
    expected = {d.id: rule.evaluate(d.metadata) for d in annotated.docs}
    # annotations are in range
    for d in annotated.docs:
        m = d.metadata
        assert 0 <= m["ft_dclm"] <= 1 and 0 <= m["ft_cosmo"] <= 1 and m["eflaw"] >= 0
        assert 0 < m["tokens_per_byte"] <= m["tokens_per_char"] or not d.text.strip()
        assert m["is_category"] == (m["categories"] is not None)  # null, never [] or '', when none said yes
        assert m["categories"] is None or (isinstance(m["categories"], list) and set(m["categories"]) <= set(CATS))

    res = run_stages(sample_docs, [ensemble_stage(filters_models, repo_root, params=params)])
    st = res.stats[-1]
    assert st["conserved"] and st["docs_in"] == len(sample_docs)
    assert st["docs_in"] == st["docs_out"] + st["dropped_total"]
    kept = {d.id for d in res.docs}
    assert kept == {i for i, (keep, _) in expected.items() if keep}
    reasons = Counter(why for keep, why in expected.values() if not keep)
    assert st["dropped"] == dict(reasons)
    assert reasons["FT"] > 0 and reasons["READ,EXT"] > 0
    assert st["extra"]["failed_clause/READ"] == reasons["READ,EXT"]
    assert st["extra"]["failed_clause/FT"] == reasons["FT"]


def test_separate_stages_equal_the_ensemble(filters_models, repo_root, sample_docs) -> None:
    docs = sample_docs[:150]
    tok = str(repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json")
    params = {"dclm_min": 0.5, "cosmo_min": 0.5}
    chain = [
        {
            "stage": "fasttext_annotate",
            "models": [
                {"name": "dclm", "path": filters_models["dclm"], "preprocess": "dclm"},
                {"name": "cosmo", "path": filters_models["cosmo"]},
            ],
        },
        {"stage": "category_classify", "models": [{"name": c, "path": filters_models[c]} for c in CATS]},
        {"stage": "readability"},
        {"stage": "extreme_tokenization", "tokenizer": tok},
        {"stage": "quality_rule", "preset": "gneissweb", "params": params},
    ]
    a = run_stages(docs, chain)
    b = run_stages(docs, [ensemble_stage(filters_models, repo_root, params=params)])
    assert [d.id for d in a.docs] == [d.id for d in b.docs]
    assert a.stats[-1]["dropped"] == b.stats[-1]["dropped"]
    assert all(s["conserved"] for s in a.stats)
    for x, y in zip(a.docs, b.docs):
        for col in ("ft_dclm", "ft_cosmo", "eflaw", "tokens_per_char", "categories", "cat_science"):
            assert x.metadata[col] == y.metadata[col]


def test_quality_rule_stage_with_own_rule(sample_docs) -> None:
    docs = [{"text": d["text"], "id": d["id"]} for d in sample_docs[:100]]
    res = run_stages(
        docs,
        [
            {"stage": "readability"},
            {
                "stage": "quality_rule",
                "keep": "READABLE and not TOO_LONG",
                "clauses": {"READABLE": "eflaw < max_eflaw", "TOO_LONG": "eflaw > 1000"},
                "params": {"max_eflaw": 25},
            },
        ],
    )
    st = res.stats[-1]
    assert st["conserved"] and set(st["dropped"]) <= {"READABLE", "not TOO_LONG"}
    assert all(d.metadata["eflaw"] < 25 for d in res.docs)
    assert st["dropped"].get("READABLE", 0) == sum(1 for d in docs if _eflaw(d["text"]) >= 25)


def _eflaw(text: str) -> float:
    from curate.filters.readability import mcalpine_eflaw

    return mcalpine_eflaw(text)


def test_datatrove_heuristics_by_name(sample_docs) -> None:
    pytest.importorskip("spacy", reason="datatrove's English word tokenizer needs spacy")
    short = {"id": "short", "text": "Too short to be a document."}
    docs = sample_docs[:120] + [short]
    res = run_stages(
        docs,
        [
            {"stage": "gopher_repetition"},
            {"stage": "gopher_quality", "min_doc_words": 50},
            {"stage": "fineweb_quality", "short_line_thr": 0.9},
            {"stage": "c4_quality", "filter_curly_bracket": False},
        ],
    )
    assert all(s["conserved"] for s in res.stats)
    gq = next(s for s in res.stats if s["label"] == "gopher_quality")
    assert "gopher_short_doc" in gq["dropped"]
    assert "short" not in {d.id for d in res.docs}
    assert 0 < len(res.docs) < len(docs)


def test_sample_config_uses_committed_models(repo_root: Path) -> None:
    cfg = load_config(repo_root / "configs" / "sample.yaml")
    entry = next(e for e in cfg.entries if e.stage == "gneissweb_ensemble")
    for spec in [*entry.options.quality_models, *entry.options.category_models]:
        assert (repo_root / spec.path).is_file()
    assert entry.options.rule.params["dclm_min"] == 0.002  # the GneissWeb preset


def test_train_classifier_cli(tmp_path: Path, data_dir: Path, capsys) -> None:
    rows = [json.loads(line) for line in (data_dir / "dclm-human-quality" / "majority_data.jsonl").open()]
    pos, neg = tmp_path / "pos.jsonl", tmp_path / "neg.jsonl"
    pos.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows if r["label"] == 1))
    neg.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows if r["label"] == 0))
    out = tmp_path / "m" / "q.bin"
    rc = curate_main(
        [
            "train-classifier",
            "--positive",
            str(pos),
            "--negative",
            str(neg),
            "--holdout",
            "0.25",
            "--seed",
            "3",
            "--epoch",
            "15",
            "--output",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    held = report["held_out"]
    assert held["n"] == round(272 * 0.25) + round(227 * 0.25) and held["positives"] == 68
    assert held["auc"] > 0.7 and 0 < held["f1"] <= 1
    assert report["train"] == 499 - held["n"]
    assert sorted(fasttext.load_model(str(out)).get_labels()) == ["__label__cc", "__label__hq"]
    # bad invocations are one-line errors, not tracebacks
    assert curate_main(["train-classifier", "--input", str(pos), "--positive", str(pos), "--output", "x.bin"]) == 2
    assert curate_main(["train-classifier", "--input", str(tmp_path / "nope.jsonl"), "--output", "x.bin"]) == 2
    assert curate_main(["train-classifier", "--input", str(pos), "--output", "x.bin", "--quantize"]) == 2
    assert "error:" in capsys.readouterr().err


def test_rule_membership_in_the_categories_list(filters_models) -> None:
    """`categories` is a list (null when no classifier said yes): rules test it with `in`."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from curate.core.errors import ConfigError
    from curate.filters.rule import RuleError

    r = Rule("'medical' in categories or not is_category")
    assert r.evaluate({"categories": ["education", "medical"], "is_category": True}) == (True, None)
    assert r.evaluate({"categories": ["science"], "is_category": True}) == (
        False,
        "'medical' in categories,not is_category",
    )
    assert r.evaluate({"categories": None, "is_category": False}) == (True, None)
    assert Rule("1 in xs").evaluate({"xs": [1.0]})[0] and not Rule("1 in xs").evaluate({"xs": [True]})[0]
    assert r.columns == {"categories", "is_category"}
    with pytest.raises(RuleError, match="not a list"):
        r.evaluate({"categories": "medical", "is_category": True})  # the old comma-separated string
    for bad in ("'a' in 'abc'", "'a' in p", "'a' in in", "('a' in c) < 2", "'a' in", "a in b in c"):
        with pytest.raises(ConfigError):
            Rule(bad, params={"p": 1})

    # membership through the stages: the rule sees what category_classify wrote
    docs = [
        {"id": str(i), "text": t}
        for i, t in enumerate(
            [
                "Patients with chronic pain and diabetes should see a doctor. The clinic offers treatment, therapy and "
                "medication; the hospital nurse checks blood pressure and symptoms of infection before surgery.",
                "The weather was fine and we walked along the river to the old bridge, then had lunch in the square.",
            ]
        )
    ]
    cats = [{"stage": "category_classify", "models": [{"name": c, "path": filters_models[c]} for c in CATS]}]
    annotated = run_stages(docs, cats)
    res = run_stages(docs, cats + [{"stage": "quality_rule", "keep": "'medical' in categories"}])
    assert [d.id for d in res.docs] == [d.id for d in annotated.docs if "medical" in (d.metadata["categories"] or [])]

    atoms = ["a", "xs", "in", "'s'", "1", "not", "and", "(", ")", "==", "<", "true"]

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(atoms), max_size=10))
    def fuzz(parts: list[str]) -> None:
        try:
            rule = Rule(" ".join(parts))
        except ConfigError:
            return
        for xs in (None, [], ["s", 1], "s"):
            try:
                rule.evaluate({"a": 1, "xs": xs})
            except RuleError:
                pass

    fuzz()
