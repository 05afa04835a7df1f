"""fastText annotation with models trained in this session on real text: P(label), preprocessing, batching."""

from __future__ import annotations

import json
from pathlib import Path

import fasttext
import pytest

from curate.core.errors import ConfigError
from curate.core.model_refs import classify_ref, resolve_model_file
from curate.filters import training as T
from curate.filters.fasttext_scoring import CategoryModelSpec, FastTextModel, FastTextModelSpec, preprocess
from curate.filters.stages.category_classify import CategoryAnnotator, CategoryOptions
from curate.filters.stages.fasttext_annotate import FastTextAnnotateOptions, FastTextAnnotator
from curate.filters.token_counts import TokenCounter, token_densities
from curate.pipeline import run_stages


@pytest.fixture(scope="module")
def agreement(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "dclm-human-quality" / "agreement_data.jsonl").open()]


def test_quality_model_learns_human_labels(filters_models: dict[str, str], agreement: list[dict]) -> None:
    """Held out: agreement_data was removed from the training set (majority minus agreement)."""
    model = fasttext.load_model(filters_models["dclm"])
    params = T.TrainParams(preprocess="dclm")
    m = T.evaluate(model, [(r["text"], r["label"] == 1) for r in agreement], params)
    assert m.auc > 0.75 and m.f1 > 0.7, m.as_dict()


def test_score_is_p_label_not_top1_confidence(filters_models: dict[str, str], agreement: list[dict]) -> None:
    raw = fasttext.load_model(filters_models["dclm"])
    texts = [r["text"] for r in agreement]
    flat = [preprocess(t, "dclm") for t in texts]
    labels, probs = raw.predict(flat, k=1)
    # documents the model calls low quality: top-1 is __label__cc with confidence > 0.5
    low = [i for i, (lab, _) in enumerate(zip(labels, probs)) if lab[0] == "__label__cc"]
    assert len(low) >= 3
    result = run_stages(
        [{"id": str(i), "text": texts[i]} for i in low],
        [
            {
                "stage": "fasttext_annotate",
                "models": [{"name": "dclm", "path": filters_models["dclm"], "preprocess": "dclm"}],
            }
        ],
    )
    for doc in result.docs:
        i = int(doc.id)
        p_hq = doc.metadata["ft_dclm"]
        top1 = float(probs[i][0])
        assert p_hq < 0.5 < top1
        assert p_hq == pytest.approx(1.0 - top1, abs=1e-4)  # binary: P(hq) = 1 - P(cc)
    # and for a confidently good document the two agree
    hi = [i for i, lab in enumerate(labels) if lab[0] == "__label__hq"][0]
    res = run_stages(
        [texts[hi]],
        [
            {
                "stage": "fasttext_annotate",
                "models": [{"name": "dclm", "path": filters_models["dclm"], "preprocess": "dclm"}],
            }
        ],
    )
    assert res.docs[0].metadata["ft_dclm"] == pytest.approx(float(probs[hi][0]), abs=1e-4)


def test_preprocessing_modes() -> None:
    text = "  First line\nsecond line\r\nthird\n\n"
    assert preprocess(text, "dclm") == "First line second line third"
    assert preprocess(text, "newlines") == "  First line second line\r third  "
    assert "\n" not in preprocess("a\nb", "newlines")


def test_several_models_one_pass_match_single_predicts(filters_models: dict[str, str], agreement: list[dict]) -> None:
    texts = [r["text"] for r in agreement[:60]]
    specs = [
        FastTextModelSpec(name="dclm", path=filters_models["dclm"], preprocess="dclm"),
        FastTextModelSpec(name="cosmo", path=filters_models["cosmo"], preprocess="newlines"),
    ]
    res = run_stages(texts, [FastTextAnnotator(FastTextAnnotateOptions(models=specs, batch_size=16))])
    assert res.stats[-1]["conserved"] and res.stats[-1]["docs_out"] == 60
    for name, prep in (("dclm", "dclm"), ("cosmo", "newlines")):
        model = fasttext.load_model(filters_models[name])
        for doc, text in zip(res.docs, texts):
            labs, ps = model.predict(preprocess(text, prep), k=-1)
            # fastText reports p + 1e-5 (its log smoothing); the score is p itself
            expected = min(1.0, max(0.0, float(ps[list(labs).index("__label__hq")]) - 1e-5))
            assert doc.metadata[f"ft_{name}"] == pytest.approx(expected, abs=1e-6)
    # batch size does not change scores
    res1 = run_stages(texts, [FastTextAnnotator(FastTextAnnotateOptions(models=specs, batch_size=1))])
    assert [d.metadata["ft_cosmo"] for d in res1.docs] == [d.metadata["ft_cosmo"] for d in res.docs]


def test_category_annotator(filters_models: dict[str, str], agreement: list[dict]) -> None:
    specs = [
        CategoryModelSpec(name=c, path=filters_models[c]) for c in ("medical", "education", "technology", "science")
    ]
    texts = [r["text"] for r in agreement] + [
        "Patients with chronic pain and diabetes should see a doctor. The clinic offers treatment, therapy and "
        "medication; the hospital nurse checks blood pressure and symptoms of infection before surgery."
    ]
    res = run_stages(texts, [CategoryAnnotator(CategoryOptions(models=specs))])
    for doc in res.docs:
        said = doc.metadata["categories"] or []
        assert doc.metadata["categories"] is None or isinstance(doc.metadata["categories"], list) and said
        assert doc.metadata["is_category"] is bool(said)
        for c in ("medical", "education", "technology", "science"):
            # binary model: top label is the category exactly when 1 - P(cc) >= 0.5 (ties aside)
            score = doc.metadata[f"cat_{c}"]
            assert score >= 0.5 - 1e-4 if c in said else score <= 0.5 + 1e-4
        assert all(0.0 <= doc.metadata[f"cat_{c}"] <= 1.0 for c in ("medical", "science"))
    # the model learned something: the obviously medical text scores above almost every other doc
    med = sorted(d.metadata["cat_medical"] for d in res.docs[:-1])
    assert res.docs[-1].metadata["cat_medical"] > med[int(0.9 * len(med))]


def test_wrong_label_and_missing_file(filters_models: dict[str, str], tmp_path: Path) -> None:
    m = FastTextModel(filters_models["dclm"])
    with pytest.raises(ConfigError, match="__label__nope"):
        m.prob(["some text"], "__label__nope")
    with pytest.raises(ConfigError, match="no such file"):
        resolve_model_file(str(tmp_path / "missing.bin"))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        _ = FastTextModel(str(bad)).labels


def test_model_reference_resolution(filters_models: dict[str, str], tmp_path: Path) -> None:
    # hub names are recognised (the real download code is never called in tests)
    assert classify_ref("mlfoundations/fasttext-oh-eli5") == ("hub", "mlfoundations/fasttext-oh-eli5")
    assert classify_ref("hf://ibm-granite/GneissWeb.Quality_annotator") == (
        "hub",
        "ibm-granite/GneissWeb.Quality_annotator",
    )
    assert classify_ref("bigcode/starcoder") == ("hub", "bigcode/starcoder")
    # anything that exists, or looks like a file path, is local
    assert classify_ref(filters_models["dclm"]) == ("local", filters_models["dclm"])
    assert classify_ref("models/quality.bin")[0] == "local"
    assert classify_ref("./a/b")[0] == "local"
    # a folder that exists locally wins over the hub, and `filename` picks the file in it
    d = tmp_path / "owner" / "name"
    d.mkdir(parents=True)
    (d / "tokenizer.json").write_text("{}")
    assert resolve_model_file(str(d), "tokenizer.json", (".json",)) == str(d / "tokenizer.json")


def test_token_densities(repo_root: Path) -> None:
    counter = TokenCounter(str(repo_root / "dedup" / "assets" / "gpt2" / "tokenizer.json"))
    # GPT-2: "hello world" -> ["hello", " world"]; "héllo" has 5 chars, 6 bytes
    n = counter.count(["hello world", "", "héllo"])
    assert n[0] == 2 and n[1] == 0
    assert token_densities(2, "hello world") == (2 / 11, 2 / 11)
    tpc, tpb = token_densities(n[2], "héllo")
    assert tpc == n[2] / 5 and tpb == n[2] / 6
    assert token_densities(0, "") == (0.0, 0.0)
    # the tokenizer folder works too (tokenizer.json inside it)
    assert TokenCounter(str(repo_root / "dedup" / "assets" / "gpt2")).count(["hello world"]) == [2]


def test_committed_sample_models_load(repo_root: Path) -> None:
    models = repo_root / "filters" / "assets" / "models"
    total = 0
    for f in sorted(models.glob("*.ftz")):
        total += f.stat().st_size
        labels = fasttext.load_model(str(f)).get_labels()
        assert "__label__cc" in labels and len(labels) == 2
    assert 6 * 20_000 < total < 1_000_000


def test_probabilities_lie_in_0_1_on_the_sample(repo_root: Path, sample_dir: Path) -> None:
    """The committed sample models over all of data/sample: fastText reports up to 1.00001 (p + 1e-5);
    every score column stays in [0, 1], and a binary model's two probabilities sum to 1."""
    import gzip

    from curate.filters.fasttext_scoring import CategoryScorer, QualityScorer, label_probability

    texts = [json.loads(line)["text"] for f in sorted(sample_dir.glob("*.jsonl.gz")) for line in gzip.open(f)]
    models = repo_root / "filters" / "assets" / "models"
    raw = fasttext.load_model(str(models / "quality_dclm.ftz"))
    labels, probs = raw.predict([preprocess(t, "dclm") for t in texts], k=-1, threshold=0.0)
    assert sum(float(p) > 1.0 for ps in probs for p in ps) > 0  # the raw values this guards against
    for labs, ps in zip(labels, probs):
        hq, cc = label_probability(labs, ps, "__label__hq"), label_probability(labs, ps, "__label__cc")
        assert 0.0 <= hq <= 1.0 and hq + cc == pytest.approx(1.0, abs=1e-6)
    quality = QualityScorer(
        [
            FastTextModelSpec(name="dclm", path=str(models / "quality_dclm.ftz"), preprocess="dclm"),
            FastTextModelSpec(name="cosmo", path=str(models / "quality_cosmo.ftz")),
        ]
    )
    cats = ("medical", "education", "technology", "science")
    category = CategoryScorer([CategoryModelSpec(name=c, path=str(models / f"category_{c}.ftz")) for c in cats])
    scores = {**quality.score(texts), **category.score(texts)[0]}
    assert len(scores) == 6
    for col, values in scores.items():
        assert len(values) == len(texts) == 1697
        assert all(0.0 <= v <= 1.0 for v in values), (col, max(values), min(values))
    assert label_probability(("__label__cc",), [1.00001], "__label__hq") == 0.0  # absent label
