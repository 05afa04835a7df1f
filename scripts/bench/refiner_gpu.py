"""Refiner training and prox_refine generation throughput next to their compute floors (GPU; runs on CPU too).

    python scripts/bench/refiner_gpu.py                       # cuda: 0.3b preset, bf16; cpu: tiny preset, fp32
    python scripts/bench/refiner_gpu.py --preset small --device cpu --docs 32

* Matrix rate: the best of a few square matmuls (bf16 on CUDA, fp32 on CPU): the card's measured
  peak that the floors use, not the datasheet's.
* Training: `curate refiner train`'s loop (refiners/train.py `micro_loss`, AdamW, bf16 autocast on
  CUDA) on real SFT rows (heuristics labels of the bundled sample, prox_refine's prompt sizes),
  random weights of the preset. Floor: 6·N FLOPs per trained token, so the compute-bound ceiling is
  rate / 6N tokens/s; the loop's head runs only on program tokens, so it can beat 6N slightly.
* Generation: `prox_refine` (both stages, transformers backend: the lent GPU machine has no vLLM)
  with the random preset as doc and chunk model. Reported as raw document tokens/s (Llama-2 tokens
  of the input documents per second of the whole stage). Floor: 2·N FLOPs per prefilled and per
  generated token. Random weights write junk up to the generation limit (16 doc / `--chunk-tokens`
  chunk tokens), so decode is over-represented against a trained refiner's short programs: the
  generated token count is printed and is part of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def matmul_rate(device: str, dtype, n: int, reps: int = 5) -> float:  # noqa: ANN001
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def sample_docs(n: int) -> list[str]:
    import gzip

    out = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                t = json.loads(line)["text"]
                if t.strip():
                    out.append(t)
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", help="default: 0.3b on cuda, tiny on cpu")
    ap.add_argument("--train-steps", type=int, default=None, help="default 20 on cuda, 4 on cpu")
    ap.add_argument("--micro-batch-size", type=int, default=None, help="default 16 on cuda, 4 on cpu")
    ap.add_argument("--docs", type=int, default=None, help="documents refined (default 512 on cuda, 16 on cpu)")
    ap.add_argument("--chunk-tokens", type=int, default=256, help="chunk_max_tokens (ProX: 256)")
    ap.add_argument("--generate-batch-size", type=int, default=None, help="default 64 on cuda, 8 on cpu")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a loaded shared machine)")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)

    from curate.pipeline import run_stages
    from curate.refiners.presets import PRESETS, build
    from curate.refiners.prompts import load_tokenizer
    from curate.refiners.sft import read_sft
    from curate.refiners.stages.prox_refine import ProxRefineOptions, ProxRefiner
    from curate.refiners.train import TrainConfig, _optimizer, encode_examples, micro_loss

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    gpu = dev == "cuda"
    preset = a.preset or ("0.3b" if gpu else "tiny")
    steps = a.train_steps or (20 if gpu else 4)
    mb = a.micro_batch_size or (16 if gpu else 4)
    n_docs = a.docs or (512 if gpu else 16)
    gbs = a.generate_batch_size or (64 if gpu else 8)
    dtype = torch.bfloat16 if gpu else torch.float32
    N = PRESETS[preset].params()
    name = torch.cuda.get_device_name() if gpu else f"CPU ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
    rate = matmul_rate(dev, dtype, 8192 if gpu else 1024)
    print(
        f"device: {name}; preset {preset} ({N / 1e6:.0f}M parameters); measured {str(dtype)[6:]} matmul "
        f"{rate / 1e12:.2f} TFLOP/s"
        if gpu
        else f"{rate / 1e9:.1f} GFLOP/s"
    )
    out: dict = {"device": name, "preset": preset, "params": N, "matmul_flops": rate, "dtype": str(dtype)[6:]}

    # -- training ---------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        docs = sample_docs(max(64, mb * (steps + 1) // 2))
        run_stages(docs, [{"stage": "refiner_label", "teacher": {"kind": "heuristics"}}], work_dir=tmp)
        rows = read_sft([f"{tmp}/sft"])
    ex, _ = encode_examples(rows, load_tokenizer(None), 2048)
    ex.sort(key=lambda e: len(e[0]))  # length grouping, as the trainer does
    batches = [ex[i : i + mb] for i in range(0, len(ex), mb)]
    from curate.refiners.presets import fresh_model

    model = fresh_model(preset).to(dev).train()
    opt = _optimizer(model, 1e-4, TrainConfig(data=[], output=""))
    toks = tgt = 0
    t0 = 0.0
    for k in range(steps + 1):
        if k == 1:  # step 0 warms up (allocator, kernels)
            if gpu:
                torch.cuda.synchronize()
            toks, tgt, t0 = 0, 0, time.perf_counter()
        b = batches[(k * 7) % len(batches)]
        loss, n_tgt, n_tok = micro_loss(model, b, dev, dtype)
        (loss / n_tgt).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        toks += n_tok
        tgt += n_tgt
    if gpu:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    train_rate = toks / wall
    ceiling = rate / (6 * N)
    print(
        f"training: {train_rate:,.0f} tokens/s ({steps} micro-batches of {mb}, {toks:,} tokens, {tgt:,} program "
        f"tokens); compute floor 6N/token -> ceiling {ceiling:,.0f} tokens/s; measured/ceiling {train_rate / ceiling:.2f}"
    )
    out["train"] = {
        "tokens_per_s": train_rate,
        "ceiling_tokens_per_s": ceiling,
        "ratio": train_rate / ceiling,
        "tokens": toks,
        "target_tokens": tgt,
        "micro_batch_size": mb,
    }
    del model, opt
    if gpu:
        torch.cuda.empty_cache()
        out["train"]["peak_gpu_mib"] = torch.cuda.max_memory_allocated() // 2**20

    # -- prox_refine generation --------------------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(preset, Path(tmp) / "model")
        texts = sample_docs(n_docs)
        opts = ProxRefineOptions(
            backend="transformers",
            doc_model=str(folder),
            chunk_model=str(folder),
            dtype="bfloat16" if gpu else "float32",
            device=dev,
            generate_batch_size=gbs,
            chunk_max_tokens=a.chunk_tokens,
            batch_size=len(texts),
        )
        ref = ProxRefiner(opts)
        counts = {"prefill": 0, "generated": 0}
        for stage in ("doc", "chunk"):
            b = ref.backend(stage)
            b.engine()  # load outside the timing
            inner = b.generate

            def counted(prompts, max_tokens, inner=inner):  # noqa: ANN001, ANN202
                gens = inner(prompts, max_tokens)
                counts["prefill"] += sum(len(p.token_ids) for p in prompts)
                counts["generated"] += sum(len(g.token_ids) for g in gens)
                return gens

            b.generate = counted
        from datatrove.data import Document

        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        raw_tokens = sum(len(e.ids) for e in load_tokenizer(None).encode_batch(texts, add_special_tokens=False))
        if gpu:
            torch.cuda.synchronize()
        t = time.perf_counter()
        outcomes = ref.refine(docs)
        if gpu:
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
    gen_rate = raw_tokens / wall
    floor_s = 2 * N * (counts["prefill"] + counts["generated"]) / rate
    floor_rate = raw_tokens / floor_s
    print(
        f"prox_refine ({len(texts)} docs, {raw_tokens:,} raw tokens; {counts['prefill']:,} prompt tokens, "
        f"{counts['generated']:,} generated): {wall:.1f} s, {len(texts) / wall:,.1f} docs/s, {gen_rate:,.0f} raw "
        f"document tokens/s; compute floor 2N per prefilled+generated token -> {floor_rate:,.0f} raw tokens/s; "
        f"measured/floor {gen_rate / floor_rate:.3f}"
    )
    out["generate"] = {
        "docs": len(texts),
        "raw_tokens": raw_tokens,
        "prefill_tokens": counts["prefill"],
        "generated_tokens": counts["generated"],
        "wall_s": wall,
        "raw_tokens_per_s": gen_rate,
        "floor_raw_tokens_per_s": floor_rate,
        "ratio": gen_rate / floor_rate,
        "statuses": sorted({o.status for o in outcomes}),
    }
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS {out['peak_rss_mib']:,} MiB")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
