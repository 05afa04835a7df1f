"""Merge per-task stats into one `stats.json` and print the run's summary table.

datatrove writes one stats file per completed task (`LOGS/NN_job/stats/RANK.json`, a list of
per-step stats in pipeline order). We sum them per step and reshape them per stage: docs in,
docs out, drops by reason, chars in and out, and whether the equation balances. Reading the
per-task files (not the executor's in-memory result) makes this work the same after a local
run, a Slurm run, or a resumed run whose early tasks finished yesterday.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from datatrove.io import get_datafolder
from datatrove.utils.stats import MetricStats, PipelineStats

from curate.core.atomic import write_json_atomic
from curate.core.steps import UNACCOUNTED, Accounted

from .layout import STATS_FILE
from .plan import Plan, step_label
from .tokenize_output import token_counts
from .writers import JSON_TEXT


def _total(v: Any) -> float:
    return MetricStats.from_dict(v).total


def step_record(label: str, job: str, plumbing: bool, stats: dict[str, Any], time_s: float) -> dict[str, Any]:
    dropped = {k.split("/", 1)[1]: int(_total(v)) for k, v in stats.items() if k.startswith("dropped/")}
    docs_in = int(_total(stats.get("docs_in", 0)))
    docs_out = int(_total(stats.get("docs_out", 0)))
    extra = {
        k: _total(v)
        for k, v in stats.items()
        if not k.startswith("dropped/") and k not in ("docs_in", "docs_out", "chars_in", "chars_out")
    }
    return {
        "label": label,
        "job": job,
        "plumbing": plumbing,
        "docs_in": docs_in,
        "docs_out": docs_out,
        "dropped": dict(sorted(dropped.items(), key=lambda kv: -kv[1])),
        "dropped_total": sum(dropped.values()),
        "chars_in": int(_total(stats.get("chars_in", 0))),
        "chars_out": int(_total(stats.get("chars_out", 0))),
        "conserved": docs_in == docs_out + sum(dropped.values()) and UNACCOUNTED not in dropped,
        "time_s": round(time_s, 3),
        "extra": extra,
        **({"generation": gen} if (gen := generation_record(extra)) else {}),
    }


# counters of a stage that runs a language model (prox_refine: refiners/stages/prox_refine.py, `GEN`)
GEN = "gen/"


def generation_record(extra: dict[str, float]) -> dict[str, float] | None:
    """Model cost of a stage from its `gen/*` counters: tokens, tokens/s, device-seconds and device-hours
    per billion input tokens (the prompt tokens the model read, every stage's prompts counted)."""
    if f"{GEN}device_ms" not in extra:  # prompts without a model (the boilerplate backend) cost nothing
        return None
    prompt = extra.get(f"{GEN}prompt_tokens", 0.0)
    generated = extra.get(f"{GEN}generated_tokens", 0.0)
    device_s = extra.get(f"{GEN}device_ms", 0.0) / 1000
    return {
        "prompts": int(extra[f"{GEN}prompts"]),
        "restored_docs": int(extra.get(f"{GEN}restored_docs", 0)),
        "prompt_tokens": int(prompt),
        "generated_tokens": int(generated),
        "device_s": round(device_s, 3),
        "generated_tokens_per_s": round(generated / device_s, 2) if device_s else 0.0,
        "input_tokens_per_s": round(prompt / device_s, 2) if device_s else 0.0,
        "device_hours_per_1b_input_tokens": round(device_s / 3600 / (prompt / 1e9), 3) if prompt else 0.0,
    }


def generation_table(stats: dict[str, Any]) -> Any:
    """A table of the stages that ran a model (None when none did)."""
    from rich.table import Table

    rows = [(s["label"], s["generation"]) for s in stats["stages"] if s.get("generation")]
    if not rows:
        return None
    t = Table(title="model generation", title_justify="left")
    for col in ("stage", "prompts", "input tokens", "generated", "tokens/s (gen)", "device-s", "device-h / 1B input"):
        t.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    for label, g in rows:
        t.add_row(
            label,
            f"{g['prompts']:,}" + (f" (+{g['restored_docs']:,} docs restored)" if g["restored_docs"] else ""),
            f"{g['prompt_tokens']:,}",
            f"{g['generated_tokens']:,}",
            f"{g['generated_tokens_per_s']:,.1f}",
            f"{g['device_s']:,.1f}",
            f"{g['device_hours_per_1b_input_tokens']:,.1f}",
        )
    return t


def collect_stats(plan: Plan) -> dict[str, Any]:
    """Read every completed task's stats and build the run's stats dict."""
    stages: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    for i, job in enumerate(plan.jobs):
        folder = get_datafolder(plan.job_logging_dir(i))
        files = sorted(folder.list_files("stats")) if folder.isdir("stats") else []
        merged = PipelineStats()
        for f in files:
            with folder.open(f, "rt") as fh:
                merged = merged + PipelineStats.from_json(json.load(fh))
        jobs.append({"name": job.name, "tasks": job.tasks, "tasks_completed": len(files)})
        for k, step in enumerate(job.steps):
            s = merged.stats[k] if k < len(merged.stats) else None
            label = getattr(step, "label", None) or step.name
            if not isinstance(step, Accounted):
                # a datatrove step with no curate accounting (e.g. MinHash signatures): keep its raw stats
                stages.append(
                    {
                        "label": step_label(step),
                        "job": job.name,
                        "plumbing": True,
                        "raw": s.stats.to_dict() if s else {},
                        "ran": bool(files),
                    }
                )
                continue
            record = step_record(
                label, job.name, step.plumbing, s.stats.to_dict() if s else {}, s.time_stats.total if s else 0.0
            )
            record["ran"] = bool(files)  # no task of its job finished (a failed or unfinished run)
            report = getattr(step, "stats_report", None)  # a stage's own report (e.g. decontamination per eval set)
            if callable(report) and files:
                extra_report = report()
                if extra_report:
                    record["report"] = extra_report
            stages.append(record)
    complete = all(j["tasks_completed"] == j["tasks"] for j in jobs)
    accounted = [s for s in stages if "docs_in" in s and s.get("ran", True)]
    stats = {
        "run": plan.config.name,
        "complete": complete,
        "jobs": jobs,
        # curate's stages (each accounted: in = out + dropped); datatrove's own steps (MinHash buckets, ...) apart
        "stages": [s for s in stages if "raw" not in s],
        "datatrove_steps": [s for s in stages if "raw" in s],
        "conserved": all(s["conserved"] for s in accounted),
        "flow_errors": flow_errors(stages) if complete else [],
        "warnings": list(plan.warnings) + unfit_warnings(stages),
        "input_records": accounted[0]["docs_in"] if accounted else 0,
        "output_docs": accounted[-1]["docs_out"] if accounted else 0,
    }
    if plan.config.output.tokenize is not None and complete:  # counted from the written shards
        stats["tokens"] = token_counts(plan.output_dir, plan.config.output.tokenize)
    return stats


def unfit_warnings(stages: list[dict[str, Any]]) -> list[str]:
    """Values a writer could not store in their column's type (written as null), and values of a string column
    that were not strings (written as JSON text), per column."""
    out = []
    for s in stages:
        for key, n in sorted((s.get("extra") or {}).items()):
            if key.startswith("unfit_value/") and n:
                out.append(
                    f"{s['label']}: {int(n):,} value(s) of column {key.split('/', 1)[1]!r} did not fit its type "
                    "(written as null)"
                )
            elif key.startswith(JSON_TEXT) and n:
                col = key.split("/", 1)[1]
                out.append(
                    f"{s['label']}: {int(n):,} value(s) of string column {col!r} were not strings (written as JSON "
                    f"text; declare its type, e.g. output.metadata_columns: {{{col}: float64}}, to keep them as values)"
                )
    return out


def write_stats(plan: Plan, stats: dict[str, Any]) -> str:
    write_json_atomic(plan.output_dir, STATS_FILE, stats)
    return plan.layout.stats_file


def _fmt_reasons(dropped: dict[str, int], n: int = 3) -> str:
    items = list(dropped.items())
    s = ", ".join(f"{k} {v:,}" for k, v in items[:n])
    if len(items) > n:
        s += f", +{len(items) - n} more"
    return s


def summary_table(stats: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(
        title=f"curate run '{stats['run']}'" + ("" if stats["complete"] else " (INCOMPLETE)"), title_justify="left"
    )
    for col, just in (
        ("stage", "left"),
        ("docs in", "right"),
        ("docs out", "right"),
        ("dropped", "right"),
        ("top drop reasons", "left"),
        ("chars kept", "right"),
        ("conserved", "center"),
    ):
        t.add_column(col, justify=just, no_wrap=col != "top drop reasons")  # type: ignore[arg-type]
    for s in stats["stages"]:
        if s.get("plumbing") and s["label"] != "write":
            continue
        if "docs_in" not in s:
            continue
        if not s.get("ran", True):
            t.add_row(s["label"], "-", "-", "-", "[dim]not run[/dim]", "-", "-")
            continue
        kept = f"{s['chars_out'] / s['chars_in']:.1%}" if s["chars_in"] else "-"
        t.add_row(
            s["label"],
            f"{s['docs_in']:,}",
            f"{s['docs_out']:,}",
            f"{s['dropped_total']:,}",
            _fmt_reasons(s["dropped"]),
            kept,
            "✓" if s["conserved"] else "[red]✗[/red]",
        )
    return t


def print_summary(stats: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal:  # logs and pipes: rich would assume 80 columns and fold every drop reason
        console.width = max(console.width, 140)
    console.print(summary_table(stats))
    gen = generation_table(stats)
    if gen is not None:
        console.print(gen)
    if stats.get("tokens"):
        console.print(tokens_line(stats["tokens"]), highlight=False, soft_wrap=True)
    for line in report_lines(stats):
        console.print(line, highlight=False, soft_wrap=True)
    for w in stats.get("warnings", []):
        console.print(f"[yellow]warning[/yellow]: {w}", highlight=False, soft_wrap=True)


def tokens_line(tokens: dict[str, Any]) -> str:
    """One line under the summary: what a trainer gets from tokens/ (tokenize_output.token_counts)."""
    return (
        f"tokens: {tokens['tokens']:,} in {tokens['documents']:,} documents, {len(tokens['files'])} "
        f"{tokens['format']} file(s) under tokens/{tokens['format']}/ ({tokens['dtype']}, eos {tokens['eos']!r})"
    )


def report_lines(stats: dict[str, Any]) -> list[str]:
    """One line per eval set of each decontamination report under the summary table."""
    out = []
    for s in stats.get("stages", []):
        rep = s.get("report") or {}
        if rep.get("kind") != "decontamination":
            continue
        for name, r in rep.get("sets", {}).items():
            out.append(
                f"{s['label']}: eval set {name}: {r['docs_hit']:,} documents hit ({r['docs_contaminated']:,} "
                f"contaminated, mode {rep.get('mode')}), {r['ngrams_hit']:,} n-grams, "
                f"{r.get('items_hit', 0):,} of {r.get('eval_items', 0):,} items"
            )
    return out


def check_conservation(stages: Iterable[dict[str, Any]]) -> list[str]:
    """Human-readable list of stages whose equation does not balance (empty when all do)."""
    bad = []
    for s in stages:
        if "docs_in" in s and s.get("ran", True) and not s["conserved"]:
            bad.append(f"{s['label']}: in {s['docs_in']} != out {s['docs_out']} + dropped {s['dropped_total']}")
    return bad


def flow_errors(stages: list[dict[str, Any]]) -> list[str]:
    """Documents lost *between* stages: each stage's docs_out must be the next one's docs_in.

    Within a job this holds by construction of the accounting wrapper; across a barrier it checks
    that every document handed off by one job was read by the next. Only consecutive accounted
    main-flow steps are compared (a side job or a raw datatrove step in between breaks the chain);
    `rejected:` writers are not part of the flow.
    """
    errors = []
    prev = None
    for s in stages:
        if "docs_in" not in s:
            prev = None
            continue
        if prev is not None and (
            prev["job"] == s["job"] or (prev["label"] == "handoff write" and s["label"] == "handoff read")
        ):
            if prev["docs_out"] != s["docs_in"]:
                errors.append(f"{prev['label']} -> {s['label']}: {prev['docs_out']} out but {s['docs_in']} in")
        elif prev is not None and s["label"] != "handoff read":
            pass  # a job that does not continue the document flow (e.g. MinHash buckets)
        prev = s
    return errors
