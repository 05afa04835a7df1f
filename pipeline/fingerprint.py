"""What decides a run's output, as fingerprints: per stage, per config (and the curate version).

Resume (resume.py) chains them per job; the output's Parquet files and run record carry the
config's, so a dataset says which config and which curate made it.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

from .config import CurateConfig


def curate_version() -> str:
    try:
        return metadata.version("curate")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_fingerprints(config: CurateConfig) -> dict[str, str]:
    """label -> fingerprint of what the stage does (name, options, its job's task count)."""
    out = {}
    for e in config.entries:
        opts = e.raw  # as written: a hub id stays the same whether or not this machine has it cached
        tasks = e.resources.tasks if e.resources is not None else None
        out[e.label] = _digest({"stage": e.stage, "options": opts, "resources.tasks": tasks})
    return out


def _output_part(config: CurateConfig) -> dict[str, Any]:
    o = config.output.model_dump(mode="json")
    return {k: o[k] for k in ("path", "compression", "keep_rejected", "metadata_columns", "rows_per_group")}


def _global_part(config: CurateConfig) -> dict[str, Any]:
    part = {"input": config.input.model_dump(mode="json"), "on_error": config.on_error}
    if config.on_stage_error != "fail":  # (a run fingerprinted before the key existed stays the same)
        part["on_stage_error"] = config.on_stage_error
    return part


def config_fingerprint(config: CurateConfig) -> dict[str, Any]:
    """One fingerprint of the whole config's decisive parts, and those parts as written in the config
    (`decisive`: input, output, tasks, the stage entries, on_error; the report reads its thresholds there)."""
    parts = {
        **_global_part(config),
        "output": _output_part(config),
        "tasks": config.executor.tasks,
        "stages": stage_fingerprints(config),
    }
    if config.output.tokenize is not None:  # token shards are part of the dataset (their own jobs on resume)
        parts["tokenize"] = config.output.tokenize.model_dump(mode="json")
    raw = config.model_dump(mode="json")
    decisive = {
        "input": raw["input"],
        "output": _output_part(config),
        "tasks": raw["executor"]["tasks"],
        "stages": raw["stages"],
        "on_error": raw["on_error"],
    }
    return {"fingerprint": _digest(parts), "decisive": decisive, "global": _digest(_global_part(config))}


def job_fingerprints(config: CurateConfig, jobs: list[Any], stages: dict[str, str]) -> list[str]:
    """Each job's fingerprint, chained from the job before it: the input and on_error (through job 0), its
    own stages, its task count, and the output settings for the jobs that write output or rejected/."""
    keep_rejected = config.output.keep_rejected
    out, prev = [], _digest(_global_part(config))
    for job in jobs:
        part: dict[str, Any] = {
            "prev": prev,
            "name": job.name,
            "tasks": job.tasks,
            "stages": [(label, stages.get(label)) for label in job.stages],
        }
        if job.writes_output or keep_rejected:
            part["output"] = _output_part(config)
        prev = _digest(part)
        out.append(prev)
    return out
