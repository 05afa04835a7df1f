"""Build a refiner on this machine: heuristics teacher + DCLM human labels -> small student on CPU -> ProX F1.

    python scripts/bench/refiner.py [--out /tmp/refiner-bench] [--train-minutes 12] [--preset small]

1. Label: the bundled sample (data/sample) plus the other real web text in tests/data (DCLM's
   human-labelled pages, the web fixtures, Dolma CC) through a `refiner_label` run (2 tasks). Chunk
   stage: the `heuristics` line rules; doc stage: DCLM's human keep/drop labels (the only labelled
   documents; the others give chunk rows only). Prints the share of chunks the teacher edits.
2. Train: a fresh `--preset` student on every valid row of the training split (10% of documents
   held out by id hash), fp32 on CPU, for at most `--train-minutes`. Same-run baseline for the
   training rate: the plain transformers loss (`model(input_ids, labels=...)`, the output head over
   every position) on the same micro-batches.
3. Evaluate on the held-out rows: the student, the untrained preset (the floor) and the `boilerplate`
   backend, with `curate refiner eval`'s metrics (doc F1 with drop = positive, chunk line-removal F1).

Prompts are cut shorter than prox_refine's defaults (`--prompt-tokens`, 512 for both stages) so that a
CPU epoch fits the time budget; run prox_refine with the same `max_doc_tokens` / `max_chunk_tokens`.
Prints throughput, peak RSS and the figures; writes OUT/bench.json. The machine is shared: the
load average is printed next to the rates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    ("sample-c4", REPO / "data/sample/c4-en-1k.jsonl.gz"),
    ("sample-dolma", REPO / "data/sample/dolma-cc-2019-00140.jsonl.gz"),
    ("dclm", REPO / "tests/data/dclm-human-quality/majority_data.jsonl"),
    *[(f"web-{p.name.split('.')[0]}", p) for p in sorted((REPO / "tests/data/web-fixtures-small").glob("*.json*"))],
    *[(f"dolma-{p.name.split('.')[0]}", p) for p in sorted((REPO / "tests/data/dolma-cc-2019").glob("*.jsonl.gz"))],
]


def _open(p: Path):  # noqa: ANN202
    return gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else p.open(encoding="utf-8")


def build_input(folder: Path) -> dict[str, int]:
    """Two jsonl.gz shards of {id, text[, label]}: every source record, ids naming source and record."""
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    shards = [gzip.open(folder / f"part{k}.jsonl.gz", "wt", encoding="utf-8") for k in range(2)]
    n = 0
    for name, path in SOURCES:
        with _open(path) as f:
            for i, line in enumerate(f):
                rec = json.loads(line)
                out = {"id": f"{name}/{i}", "text": rec.get("text", "")}
                if "label" in rec:
                    out["label"] = rec["label"]
                shards[n % 2].write(json.dumps(out) + "\n")
                n += 1
                counts[name] = counts.get(name, 0) + 1
    for s in shards:
        s.close()
    return counts


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def rate_baseline(rows: list[dict], preset: str, micro: int, n: int = 5) -> tuple[float, float]:
    """tokens/s of curate's loss (head on target positions) and of the plain HF loss, same micro-batches."""
    import torch

    from curate.refiners.presets import fresh_model
    from curate.refiners.prompts import load_tokenizer
    from curate.refiners.train import encode_examples, micro_loss

    ex, _ = encode_examples(rows[: micro * n], load_tokenizer(None), 2048)
    batches = [ex[i : i + micro] for i in range(0, len(ex), micro)][:n]
    out = []
    for mode in ("curate", "hf"):
        model = fresh_model(preset)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        toks, t0 = 0, 0.0
        for k, b in enumerate(batches):
            if k == 1:  # the first micro-batch warms up (allocations, kernels) and is not timed
                toks, t0 = 0, time.time()
            if mode == "curate":
                loss, n_tgt, n_tok = micro_loss(model, b, "cpu", torch.float32)
                (loss / n_tgt).backward()
            else:
                width = max(len(i) for i, _ in b)
                x = torch.zeros((len(b), width), dtype=torch.long)
                att = torch.zeros_like(x)
                lab = torch.full_like(x, -100)
                for r, (ids, p) in enumerate(b):
                    x[r, : len(ids)] = torch.tensor(ids)
                    att[r, : len(ids)] = 1
                    lab[r, p : len(ids)] = torch.tensor(ids[p:])
                model(input_ids=x, attention_mask=att, labels=lab).loss.backward()
                n_tok = int(att.sum())
            opt.step()
            opt.zero_grad()
            toks += n_tok
        out.append(toks / (time.time() - t0))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/refiner-bench"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--train-minutes", type=float, default=12.0)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--holdout", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-chunks", type=int, default=300, help="held-out chunk rows scored (first N by id)")
    ap.add_argument("--backend", choices=["vllm", "transformers"], default="vllm", help="generation for the eval")
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a loaded shared machine)")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from curate.pipeline import parse_config, run_config
    from curate.pipeline.commands.refiner import label_stats
    from curate.refiners.evaluate import ModelSpec, evaluate, table
    from curate.refiners.presets import PRESETS, build
    from curate.refiners.sft import read_sft
    from curate.refiners.train import TrainConfig, select, train

    shutil.rmtree(a.out, ignore_errors=True)
    report: dict = {"load_before": load()}
    counts = build_input(a.out / "input")
    print(
        f"input: {sum(counts.values()):,} records from {len(counts)} sources ({', '.join(f'{k} {v}' for k, v in counts.items())})"
    )

    # -- 1. label -----------------------------------------------------------------------------------
    cfg = parse_config(
        {
            "name": "refiner-bench",
            "input": {"format": "jsonl", "path": str(a.out / "input")},
            "output": {"path": str(a.out / "label")},
            "executor": {"tasks": 2, "workers": 2},
            "stages": [
                {
                    "stage": "refiner_label",
                    "max_doc_tokens": a.prompt_tokens,
                    "max_chunk_tokens": a.prompt_tokens,
                    "teacher": {"kind": "heuristics"},
                }
            ],
        }
    )
    t = time.time()
    stats = run_config(cfg, progress=False)
    label_s = time.time() - t
    lab = label_stats(stats)["refiner_label"]
    edited = lab.get("chunk/edited", 0) / max(1, lab.get("chunk/valid", 1))
    rows = read_sft([str(a.out / "label")])
    print(
        f"label: {lab['docs']:,} docs in {label_s:.1f} s ({lab['docs'] / label_s:,.0f} docs/s); doc rows "
        f"{lab.get('doc/valid', 0)} valid ({lab.get('doc/drop_doc', 0)} drop), {lab.get('doc/no_label', 0)} docs "
        f"without a human label; chunk rows {lab.get('chunk/valid', 0):,} valid, {lab.get('chunk/invalid', 0)} invalid, "
        f"{lab.get('chunk/capped', 0)} capped; teacher edits {edited:.1%} of chunks"
    )
    report["label"] = {**lab, "seconds": round(label_s, 1), "edited_share": edited}

    # -- 2. train -----------------------------------------------------------------------------------
    train_rows = select(rows, holdout=a.holdout)
    held = select(rows, holdout=a.holdout, split="heldout")
    ours, hf = rate_baseline(train_rows, a.preset, a.micro_batch_size)
    print(
        f"training rate, {a.preset} preset, same micro-batches: curate loss {ours:,.0f} tokens/s, plain "
        f"transformers loss {hf:,.0f} tokens/s ({ours / hf:.2f}x); load {load()}"
    )
    budget = a.train_minutes * 60
    tokens_per_step = (
        sum(len(r["prompt"]) for r in train_rows) / 3.3 / len(train_rows) * a.batch_size
    )  # ~3.3 chars/token
    steps = max(10, int(budget * ours * 0.9 / tokens_per_step))
    epochs = steps * a.batch_size / len(train_rows)
    print(
        f"train: {len(train_rows):,} rows ({sum(r['stage'] == 'doc' for r in train_rows)} doc), {steps} steps of "
        f"{a.batch_size} (~{epochs:.2f} epochs) within {a.train_minutes:g} min"
    )
    student = a.out / "student"
    tc = TrainConfig(
        data=[],
        output=str(student),
        preset=a.preset,
        batch_size=a.batch_size,
        micro_batch_size=a.micro_batch_size,
        epochs=max(epochs, 1e-3),
        max_steps=steps,
        lr=a.lr,
        warmup_steps=min(20, steps // 10),
        max_time_s=budget,
        progress=False,
        log_every=50,
    )
    r = train(tc, rows=train_rows)
    print(
        f"trained {r.steps} steps, {r.tokens:,} tokens in {r.wall_s:.0f} s: {r.tokens_per_s:,.0f} tokens/s "
        f"({r.target_tokens:,} program tokens); loss {r.losses[0]:.3f} -> {sum(r.losses[-10:]) / len(r.losses[-10:]):.3f}; load {load()}"
    )
    report["train"] = {
        "steps": r.steps,
        "tokens": r.tokens,
        "target_tokens": r.target_tokens,
        "wall_s": r.wall_s,
        "tokens_per_s": r.tokens_per_s,
        "baseline_hf_tokens_per_s": round(hf, 1),
        "curate_loss_tokens_per_s": round(ours, 1),
        "loss_first": r.losses[0],
        "loss_last10": sum(r.losses[-10:]) / len(r.losses[-10:]),
        "params": r.params,
        "preset": a.preset,
        "architecture": PRESETS[a.preset].__dict__,
    }
    floor = build(a.preset, a.out / "floor")

    # -- 3. evaluate --------------------------------------------------------------------------------
    held = [x for x in held if x["stage"] == "doc"] + sorted(
        (x for x in held if x["stage"] == "chunk"), key=lambda x: (x["doc_id"], x["chunk"])
    )[: a.eval_chunks]
    specs = [
        ModelSpec("student", a.backend, str(student)),
        ModelSpec("floor (untrained)", a.backend, str(floor)),
        ModelSpec("boilerplate backend", "boilerplate"),
    ]
    t = time.time()
    opts = dict(dtype="float32", max_model_len=2048, device="cpu", gpu_memory_utilization=0.4, enforce_eager=True)
    res = evaluate(held, specs, doc_max_tokens=16, chunk_max_tokens=192, **opts)
    print(
        f"eval: {sum(x['stage'] == 'doc' for x in held)} doc + {sum(x['stage'] == 'chunk' for x in held)} chunk "
        f"held-out rows, {time.time() - t:.0f} s"
    )
    from rich.console import Console

    Console().print(table(res))
    s, f = res["student"], res["floor (untrained)"]
    for stage, key in (("doc", "f1"), ("chunk", "line_f1")):
        sv, fv = s.get(stage, {}).get(key), f.get(stage, {}).get(key)
        print(
            f"{stage} {key}: student {sv if sv is None else round(sv, 3)} vs floor {fv if fv is None else round(fv, 3)}"
        )
    report["eval"] = res
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    report["load_after"] = load()
    print(f"peak RSS {report['peak_rss_mib']:,} MiB; load average {report['load_before']} -> {report['load_after']}")
    (a.out / "bench.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {a.out / 'bench.json'}")


if __name__ == "__main__":
    sys.exit(main())
