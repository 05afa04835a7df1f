"""The work of `curate preview` (pipeline/commands/preview.py holds its flags): sample, run, project, print.

A module of its own so that building the command line imports none of it (`curate --help` stays fast).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from typing import Any

from curate.core.atomic import write_json_atomic

from ..preview.measure import Measured, preview_overrides, run_on_sample
from ..preview.project import (
    cpu_per_stage,
    device_projection,
    memory_per_task_gb,
    project_stages,
    wall_projection,
)
from ..preview.sample import Sample, draw_sample, write_sample
from ..preview.saved import PREVIEW_FILE

# nested sub-samples the dedup fit uses, as fractions of the sample (the sample itself is 1)
SUB_SAMPLES = (0.5, 0.25)
# and a run of this many documents, first: it pays what a run costs before its first document (imports,
# model loads), which the CPU fit takes as the fixed part of each stage
FIXED_COST_DOCS = 1


def preview(args: argparse.Namespace) -> int:
    from ..config import load_config

    overrides = args.overrides(args)
    cfg = load_config(args.config, overrides)
    docs = args.docs if args.docs is not None or args.fraction is not None else 1000
    sample = draw_sample(cfg.input, docs, args.fraction, args.seed)
    scratch = args.scratch or tempfile.mkdtemp(prefix="curate-preview-")
    try:
        runs = run_sizes(args.config, overrides, cfg.input, sample, scratch)
        result = preview_result(cfg, sample, runs, args.refine_tokens_per_s, args.seed)
        if args.html:
            from ..preview.page import write_page

            write_page(args.html, result, os.path.join(scratch, "run-0", "out"))
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    write_json_atomic(result["work_dir"], PREVIEW_FILE, result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_preview(result)
    return 0


def run_sizes(
    config_path: str, overrides: dict[str, Any], input_cfg: Any, sample: Sample, scratch: str
) -> list[tuple[int, Measured]]:
    """The config run on the sample and on its nested sub-samples (prefixes of the same shuffled draw)."""
    n = sample.size
    sizes = [n] + [int(n * f) for f in SUB_SAMPLES] + [FIXED_COST_DOCS]
    sizes = [k for i, k in enumerate(sizes) if k >= 1 and k not in sizes[:i]]
    out = []
    # smallest first: what a stage loads once per process (models, tokenizers) lands on the smallest run,
    # where the CPU fit can tell it from the per-character cost
    for i, k in reversed(list(enumerate(sizes))):
        folder = write_sample(sample, os.path.join(scratch, f"sample-{i}"), k)
        run_dir = os.path.join(scratch, f"run-{i}")
        out.append((k, run_on_sample(config_path, {**overrides, **preview_overrides(input_cfg, folder, run_dir)})))
    return out[::-1]


def _total_docs(sample: Sample, main: Measured) -> float:
    if sample.est_total_docs is not None:
        return sample.est_total_docs
    read = next(s for s in main.stats["stages"] if s["label"] == "read")
    return read["docs_in"] * sample.input_bytes / max(1, sample.bytes_read)  # whole files: by bytes


def preview_result(
    cfg: Any, sample: Sample, runs: list[tuple[int, Measured]], tokens_per_s: float | None, seed: int
) -> dict[str, Any]:
    """Everything the preview says, as one JSON-able document."""
    from ..plan import build_plan, describe

    plan = build_plan(cfg, check_inputs=False)
    kinds = {e.label: e.stage for e in cfg.entries}
    labels = list(kinds)
    main = runs[0][1]
    measured = [{"stats": m.stats, "cpu": cpu_per_stage(m.stats, labels, m.cpu_s)} for _, m in runs]
    total_docs = _total_docs(sample, main)
    job_tasks = {j.name: j.tasks for j in plan.jobs}
    tasks_of = {s["label"]: job_tasks.get(s["job"], 1) for s in main.stats["stages"] if "job" in s}
    stages = project_stages(measured, {"read": "read", **kinds}, total_docs, tasks_of)
    last = stages[-1]["projected"] if stages else {"chars_out": 0, "docs_out": 0}
    last_sample = stages[-1]["sample"] if stages else {"chars_out": 0}
    mem_gb, mem_basis = memory_per_task_gb(cfg.executor)
    peak_gb = main.peak_rss_bytes / 1e9
    d = describe(plan, None)
    return {
        "config": cfg._source,
        "name": cfg.name,
        "fingerprint": plan.fingerprint["fingerprint"],
        "work_dir": plan.work_dir,
        "seed": seed,
        "sample": {
            "docs": sample.size,
            "method": sample.method,
            "input_files": sample.input_files,
            "input_bytes": sample.input_bytes,
            "bytes_read": sample.bytes_read,
            "sizes_run": [k for k, _ in runs],
            "cpu_s": round(main.cpu_s, 3),
            "wall_s": round(main.wall_s, 3),
            "notes": sample.notes,
        },
        "full": {"docs_estimated": round(total_docs), "input_bytes": sample.input_bytes},
        "stages": stages,
        "other_cpu": other_cpu(runs, measured, stages),
        "kept_docs": round(last["docs_out"]),
        "device": device_projection(stages, main.stats, tokens_per_s),
        "memory": {
            "peak_gb_per_task": round(peak_gb, 3),
            "executor_gb_per_task": round(mem_gb, 3) if mem_gb else None,
            "basis": mem_basis,
            "fits": None if mem_gb is None else peak_gb <= mem_gb,
        },
        "output_bytes": round(main.output_bytes / last_sample["chars_out"] * last["chars_out"])
        if last_sample["chars_out"]
        else 0,
        "wall": {"executor": cfg.executor.kind, **wall_projection(stages, d["jobs"], sample.input_files)},
        "estimates": [
            "dedup stages: removed documents and characters follow removed(q) = C * (k q - 1 + (1-q)^k) (C clusters "
            "of k copies, q the sampled fraction), fitted on the sample and its nested sub-samples; the full run's "
            "dedup retention is an estimate (range: the cluster sizes that fit as well), not the sample's",
            "CPU: cpu_s = fixed per task + chars / rate, fitted on the same runs; one core per task",
        ],
    }


def other_cpu(
    runs: list[tuple[int, Measured]], measured: list[dict[str, Any]], stages: list[dict[str, Any]]
) -> dict[str, Any]:
    """The process's CPU outside every stage's row (dedup side jobs such as MinHash signatures and buckets,
    planning, job start-up), fitted like a stage's on the characters read and projected the same way."""
    from ..preview.project import fit_cpu

    points = []
    for (_, m), meas in zip(runs, measured, strict=True):
        read = next((s for s in m.stats["stages"] if s.get("label") == "read"), None)
        if read is not None:
            points.append((float(read["chars_in"]), max(0.0, m.cpu_s - sum(meas["cpu"].values()))))
    fixed, per_char = fit_cpu(points)
    chars = stages[0]["projected"]["chars_in"] if stages else 0.0
    jobs = len(runs[0][1].stats.get("jobs", [])) or 1
    projected = fixed * jobs + per_char * chars
    return {
        "sample_cpu_s": round(points[0][1], 3) if points else 0.0,
        "projected_cpu_s": round(projected, 1),
        "projected_core_hours": round(projected / 3600, 4),
    }


def _n(x: float) -> str:
    return f"{x:,.0f}"


def print_preview(r: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    c = console or Console()
    if not c.is_terminal:
        c.width = max(c.width, 160)
    s = r["sample"]
    c.print(
        f"[bold]preview of {r['name']}[/bold]: {s['docs']:,} documents, {s['method']}; "
        f"{s['bytes_read']:,} of {s['input_bytes']:,} input bytes read (seed {r['seed']})",
        highlight=False,
        soft_wrap=True,
    )
    for note in s["notes"]:
        c.print(f"note: {note}", highlight=False, soft_wrap=True)
    t = Table(title="sample, measured", title_justify="left")
    for col in ("stage", "docs in", "docs out", "chars in", "chars out", "top drop reasons", "chars/CPU-s"):
        t.add_column(col, justify="left" if col in ("stage", "top drop reasons") else "right")
    for row in r["stages"]:
        m = row["sample"]
        reasons = ", ".join(f"{k} {v:,}" for k, v in m["dropped"].items())
        rate = _n(m["chars_per_cpu_s"]) if m["chars_per_cpu_s"] else "-"
        t.add_row(
            row["label"], _n(m["docs_in"]), _n(m["docs_out"]), _n(m["chars_in"]), _n(m["chars_out"]), reasons, rate
        )
    c.print(t)
    t = Table(
        title=f"full input, projected (~{r['full']['docs_estimated']:,} documents, {r['full']['input_bytes']:,} bytes)",
        title_justify="left",
    )
    for col in ("stage", "docs in", "docs out", "CPU core-h", "basis"):
        t.add_column(col, justify="left" if col in ("stage", "basis") else "right")
    for row in r["stages"]:
        p = row["projected"]
        out = _n(p["docs_out"])
        if p.get("docs_out_95"):
            lo, hi = p["docs_out_95"]
            out += f" ({_n(lo)}-{_n(hi)})"
        elif p.get("docs_out_range"):
            lo, hi = p["docs_out_range"]
            out += f" (range {_n(lo)}-{_n(hi)})"
        t.add_row(row["label"], _n(p["docs_in"]), out, f"{p['cpu_core_hours']:,.3f}", p["basis"])
    c.print(t)
    o = r["other_cpu"]
    c.print(
        f"other CPU (dedup side jobs, start-up; not in a stage's row): {o['sample_cpu_s']:,.2f} s on the sample, "
        f"~{o['projected_core_hours']:,.3f} core-hours projected",
        highlight=False,
        soft_wrap=True,
    )
    for dev in r["device"]:
        hours = f"{dev['device_hours']:,.2f} device-hours" if "device_hours" in dev else "device-hours unknown"
        c.print(
            f"{dev['label']}: ~{dev['input_tokens']:,} model input tokens: {hours} ({dev['basis']}); "
            f"anchor {dev['anchor']}: {dev['anchor_device_hours']:,.2f} A100-hours",
            highlight=False,
            soft_wrap=True,
        )
    m = r["memory"]
    verdict = "" if m["fits"] is None else (" fits" if m["fits"] else " [red]does NOT fit[/red]")
    c.print(
        f"memory: peak {m['peak_gb_per_task']:.2f} GB per task (the preview's process) vs "
        f"{m['executor_gb_per_task'] or '?'} GB per task ({m['basis']}):{verdict}",
        highlight=False,
    )
    w = r["wall"]
    c.print(
        f"output: ~{r['output_bytes'] / 1e9:,.3f} GB Parquet, ~{r['kept_docs']:,} documents kept; "
        f"wall on {w['executor']}: ~{w['wall_hours']:,.2f} h over {len(w['jobs'])} job(s)",
        highlight=False,
    )
    for e in r["estimates"]:
        c.print(f"[dim]estimate: {e}[/dim]", highlight=False, soft_wrap=True)
