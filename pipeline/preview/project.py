"""From a preview's measurements to the full run: documents, characters, CPU, device time, memory, size, wall.

Filtering stages keep the fraction they kept on the sample (a ratio scales). Dedup stages do not: a
sample that draws each document with probability q holds a duplicate pair with probability q^2, so the
duplicates a dedup stage removes grow faster than the documents it reads. The model stated here: the
stage's N input documents hold C duplicate clusters of k copies each; a sample with fraction q removes

    removed(q) = C * (k*q - 1 + (1-q)^k)        (the full run: q = 1, removed = C * (k - 1))

It is fitted on the preview's nested sub-samples (the sample, its half, its quarter): for each k on a
grid, C by least squares; the estimate is the median over the k whose squared error is within counting
noise of the best, and the range over those k, widened by the Poisson noise of the duplicates the sample
saw (2 sigma), is reported with it: when the sample saw few duplicates, k is poorly determined (k*q << 1
looks alike for every k). Always an estimate, never the sample's own retention.

CPU per stage is fitted as `cpu_s = fixed + chars_in / rate` across the same runs and a one-document run
(a fixed part, e.g. loading a model, is paid once per task, not per character); with one usable point
the fixed part is 0.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

# ProX (Zhou et al. 2024): ~3.2 A100-hours per 1B raw tokens with its 0.7B refiners
PROX_A100_HOURS_PER_1B_TOKENS = 3.2
# characters per token when the preview ran no tokenizer-counting model (English web text, GPT-2-like BPE)
CHARS_PER_TOKEN = 4.0
DEDUP_STAGES = ("exact_doc_dedup", "minhash_dedup", "exact_substring_dedup")


# ---------------------------------------------------------------------------- fits


def fit_clusters(points: list[tuple[float, float]], n_full: float) -> dict[str, Any] | None:
    """removed(q) = C * (k q - 1 + (1-q)^k) fitted on (q, removed) points; None when nothing was removed."""
    pts = [(q, d) for q, d in points if 0 < q <= 1]
    if not pts or not any(d > 0 for _, d in pts):
        return None
    q = np.array([p[0] for p in pts])
    d = np.array([p[1] for p in pts], dtype=float)
    fits = []
    for k in np.unique(np.round(np.geomspace(2, max(3.0, n_full), 400))):
        f = k * q - 1 + (1 - q) ** k
        c = float(f @ d / (f @ f)) if f @ f > 0 else 0.0
        c = min(c, n_full / k)  # the clusters must fit in the stage's input
        fits.append((float(((c * f - d) ** 2).sum()), float(k), c))
    best = min(fits)
    tol = best[0] * 2 + 0.25 * len(pts)  # about as good: within counting noise of the best
    near = sorted((c * (k - 1), k, c) for e, k, c in fits if e <= tol)
    # the median over the cluster sizes that fit about as well (a flat prior on log k), not the single best:
    # with few duplicates seen, the best k is decided by noise and swings between pairs and huge clusters
    removed, k, c = near[len(near) // 2]
    noise = 2 / math.sqrt(max(float(d.max()), 1.0))
    return {
        "model": "removed(q) = C * (k q - 1 + (1-q)^k)",
        "k": k,
        "C": round(c, 3),
        "removed_full": removed,
        # the cluster sizes that fit, widened by the counting noise of the duplicates seen (2 sigma, Poisson)
        "range": [round(near[0][0] * max(0.0, 1 - noise), 1), round(near[-1][0] * (1 + noise), 1)],
        "points": [[round(x, 6), y] for x, y in pts],
    }


def fit_cpu(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(fixed seconds, seconds per character) of cpu = fixed + chars * per_char, both >= 0.

    Least squares when it gives both >= 0; otherwise (a sample too small for its per-character cost to
    stand out of the per-run noise) the cheapest run is taken as the fixed part and the largest run's
    excess over it as the per-character part."""
    pts = [(c, s) for c, s in points if c > 0]
    if not pts:
        return 0.0, 0.0
    if len({c for c, _ in pts}) >= 2:
        slope, fixed = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
        if slope > 0 and fixed >= 0:
            return float(fixed), float(slope)
        fixed = min(s for _, s in pts)
        c, s = max(pts)
        return fixed, max(0.0, s - fixed) / c
    c, s = pts[0]
    return 0.0, s / c


# ---------------------------------------------------------------------------- per stage


def stage_rows(stats: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    """The reader and the configured stages, in run order, from a run's stats."""
    return [s for s in stats["stages"] if "docs_in" in s and (s["label"] == "read" or s["label"] in labels)]


def cpu_per_stage(stats: dict[str, Any], labels: list[str], cpu_s: float) -> dict[str, float]:
    """Each stage's CPU-seconds: its measured step time, scaled down when the steps' time exceeds the
    CPU the process used (time waiting on I/O is not CPU)."""
    rows = stage_rows(stats, labels)
    busy = sum(s.get("time_s", 0.0) for s in stats["stages"] if "docs_in" in s)
    k = min(1.0, cpu_s / busy) if busy else 1.0
    return {s["label"]: s.get("time_s", 0.0) * k for s in rows}


def _sample_row(s: dict[str, Any], cpu: float) -> dict[str, Any]:
    return {
        "docs_in": s["docs_in"],
        "docs_out": s["docs_out"],
        "chars_in": s["chars_in"],
        "chars_out": s["chars_out"],
        "dropped": dict(list(s["dropped"].items())[:3]),
        "cpu_s": round(cpu, 4),
        "chars_per_cpu_s": round(s["chars_in"] / cpu, 1) if cpu > 0 else None,
    }


def project_stages(
    runs: list[dict[str, Any]], kinds: dict[str, str], total_docs: float, tasks_of: dict[str, int]
) -> list[dict[str, Any]]:
    """Each stage, sample and full-run projection. `runs`: [{"stats", "cpu"}], the full sample first, then
    nested sub-samples; `kinds`: label -> stage name; `tasks_of`: label -> tasks of its job in the real run."""
    labels = list(kinds)
    main = stage_rows(runs[0]["stats"], labels)
    by_run = [{s["label"]: s for s in stage_rows(r["stats"], labels)} for r in runs]
    n_sample = main[0]["docs_in"] if main else 0
    scale = total_docs / n_sample if n_sample else 0.0
    out: list[dict[str, Any]] = []
    docs, chars = total_docs, (main[0]["chars_in"] * scale if main else 0.0)
    for s in main:
        label = s["label"]
        row: dict[str, Any] = {"label": label, "stage": kinds.get(label, "read"), "job": s["job"]}
        row["sample"] = _sample_row(s, runs[0]["cpu"].get(label, 0.0))
        p: dict[str, Any] = {"docs_in": docs, "chars_in": chars}
        if row["stage"] in DEDUP_STAGES:
            pts = [r[label] for r in by_run if label in r]
            doc_fit = fit_clusters([(x["docs_in"] / docs, x["dropped_total"]) for x in pts], docs) if docs else None
            char_fit = (
                fit_clusters([(x["docs_in"] / docs, x["chars_in"] - x["chars_out"]) for x in pts], chars)
                if docs
                else None
            )
            removed = min(doc_fit["removed_full"] if doc_fit else 0.0, docs)
            cut = min(char_fit["removed_full"] if char_fit else 0.0, chars)
            p.update(docs_out=docs - removed, chars_out=chars - cut, basis="estimate (dedup cluster fit)")
            p["dedup_fit"] = {"docs": doc_fit, "chars": char_fit}
            if doc_fit:
                p["docs_out_range"] = [round(docs - doc_fit["range"][1], 1), round(docs - doc_fit["range"][0], 1)]
            if doc_fit is None and char_fit is None:
                p["basis"] = "estimate: no duplicates in the sample (the full run may find some)"
        else:
            keep = s["docs_out"] / s["docs_in"] if s["docs_in"] else 1.0
            keep_chars = s["chars_out"] / s["chars_in"] if s["chars_in"] else 1.0
            p.update(docs_out=docs * keep, chars_out=chars * keep_chars, basis="ratio of the sample")
            p["docs_out_95"] = _binomial_interval(s["docs_in"], s["docs_out"], docs)
        fixed, per_char = fit_cpu(
            [(r[label]["chars_in"], runs[i]["cpu"].get(label, 0.0)) for i, r in enumerate(by_run) if label in r]
        )
        cpu_s = fixed * tasks_of.get(label, 1) + per_char * chars
        p.update(
            cpu_s=cpu_s,
            cpu_core_hours=cpu_s / 3600,
            cpu_fixed_s_per_task=fixed,
            chars_per_cpu_s=(1 / per_char) if per_char else None,
        )
        row["projected"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()}
        docs, chars = p["docs_out"], p["chars_out"]
        out.append(row)
    return out


def _binomial_interval(n: int, k: int, scale_to: float) -> list[float] | None:
    """95 % interval (Wilson) of the kept fraction, times the stage's projected input."""
    if not n:
        return None
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half) * scale_to, 1), round(min(1.0, centre + half) * scale_to, 1)]


# ---------------------------------------------------------------------------- costs


def device_projection(
    stages: list[dict[str, Any]], stats: dict[str, Any], tokens_per_s: float | None
) -> list[dict[str, Any]]:
    """Device-hours of each stage that runs a language model (prox_refine)."""
    gen = {s["label"]: s.get("generation") for s in stats["stages"] if "docs_in" in s}
    out = []
    for row in stages:
        if row["stage"] != "prox_refine" and not gen.get(row["label"]):
            continue
        g = gen.get(row["label"]) or {}
        s_chars = row["sample"]["chars_in"]
        chars_per_token = s_chars / g["prompt_tokens"] if g.get("prompt_tokens") else CHARS_PER_TOKEN
        tokens = row["projected"]["chars_in"] / chars_per_token
        d: dict[str, Any] = {
            "label": row["label"],
            "input_tokens": round(tokens),
            "chars_per_token": round(chars_per_token, 3),
            "anchor": f"ProX: ~{PROX_A100_HOURS_PER_1B_TOKENS} A100-hours per 1B raw tokens (0.7B refiners)",
            "anchor_device_hours": round(tokens / 1e9 * PROX_A100_HOURS_PER_1B_TOKENS, 3),
        }
        if tokens_per_s:
            d.update(tokens_per_s=tokens_per_s, basis="rate given (--refine-tokens-per-s)")
        elif g.get("input_tokens_per_s"):
            d.update(tokens_per_s=g["input_tokens_per_s"], basis="measured by the preview")
        if d.get("tokens_per_s"):
            d["device_hours"] = round(tokens / d["tokens_per_s"] / 3600, 3)
        else:
            d["basis"] = "no model rate measured or given: pass --refine-tokens-per-s (the anchor is shown)"
        out.append(d)
    return out


def memory_per_task_gb(executor: Any) -> tuple[float | None, str]:
    """The memory one task may use on the configured executor."""
    if executor.kind in ("slurm", "ray"):
        sub = getattr(executor, executor.kind)
        return sub.mem_per_cpu_gb * sub.cpus_per_task, f"{executor.kind} mem_per_cpu_gb x cpus_per_task"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None, "unknown"
    workers = executor.workers if executor.workers != -1 else executor.tasks
    return total / max(1, workers), f"this machine's memory / {max(1, workers)} worker(s)"


def wall_projection(stages: list[dict[str, Any]], jobs: list[dict[str, Any]], input_files: int) -> dict[str, Any]:
    """Wall time on the configured executor: each job's CPU split evenly over the tasks that run at once
    (the first job's tasks share the input files, so at most one task per file has work); jobs one after another."""
    cpu_by_job: dict[str, float] = {}
    for row in stages:
        cpu_by_job[row["job"]] = cpu_by_job.get(row["job"], 0.0) + row["projected"]["cpu_s"]
    out, total = [], 0.0
    for i, j in enumerate(jobs):
        busy = min(j["tasks"], input_files) if i == 0 else j["tasks"]
        at_once = busy if j["workers"] == -1 else min(j["workers"], busy)
        cpu = cpu_by_job.get(j["name"], 0.0)
        rounds = math.ceil(busy / max(1, at_once))
        wall = cpu / max(1, busy) * rounds
        total += wall
        out.append(
            {
                "job": j["name"],
                "tasks": j["tasks"],
                "tasks_with_work": busy,
                "at_once": at_once,
                "cpu_s": round(cpu, 1),
                "wall_s": round(wall, 1),
            }
        )
    return {"jobs": out, "wall_s": round(total, 1), "wall_hours": round(total / 3600, 3)}
