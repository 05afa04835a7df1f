"""The `stages:` list: each entry validated by its own stage's options model, found in the registry.

Used by the config loader and by `run_stages` (which takes the same dicts without a config), so
that validating stages needs no config around them.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from curate.core.errors import ConfigError
from curate.core.options import StrictModel, format_validation_error, resolve_paths
from curate.core.stage_api import get_stage, stage_names


class Resources(StrictModel):
    """Resources of a job boundary: a stage with `resources:` starts a job of its own (e.g. GPU refinement)."""

    tasks: int | None = Field(None, ge=1, description="tasks of this job (default: executor.tasks)")
    workers: int | None = Field(None, description="tasks of this job running at once (default: executor.workers)")
    cpus_per_task: int | None = Field(None, ge=1, description="CPUs per task (default: the executor's)")
    mem_per_cpu_gb: float | None = Field(None, gt=0, description="memory per CPU in GB (default: the executor's)")
    gpus_per_task: int = Field(0, ge=0, description="GPUs per task (Slurm, Ray)")
    partition: str | None = Field(None, description="Slurm partition of this job (default: executor.slurm.partition)")
    time: str | None = Field(None, description="Slurm time limit of this job (default: executor.slurm.time)")


class StageEntry(BaseModel):
    """One validated entry of `stages:`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    stage: str
    label: str
    resources: Resources | None = None
    options: Any  # the stage's own (validated) option model
    raw: dict[str, Any] = {}  # the options as written (what fingerprints are taken of: hub ids, not cache paths)


def validate_stages(items: list[Any], base_dir: Path | None = None) -> list[StageEntry]:
    """Validate `stages:` entries (dicts with `stage:`, optional `label:` / `resources:`, the options).

    Raises one ConfigError listing every problem, each naming its key (`stages[2].min_length: ...`).
    With `base_dir`, relative path options resolve against it.
    """
    problems: list[str] = []
    entries: list[StageEntry] = []
    labels: set[str] = set()
    for i, item in enumerate(items):
        where = f"stages[{i}]"
        if not isinstance(item, dict) or "stage" not in item:
            problems.append(f"{where}: each stage needs a 'stage: NAME' key (known stages: {', '.join(stage_names())})")
            continue
        item = dict(item)
        name = item.pop("stage")
        label = item.pop("label", None) or name
        resources = item.pop("resources", None)
        try:
            spec = get_stage(name)
        except KeyError:
            hint = difflib.get_close_matches(str(name), stage_names(), n=1)
            problems.append(
                f"{where}.stage: unknown stage {name!r}"
                + (f" (did you mean '{hint[0]}'?)" if hint else "")
                + f"; known stages: {', '.join(stage_names())}"
            )
            continue
        if label in labels:
            problems.append(f"{where}.label: two stages are labelled {label!r}; give one a distinct 'label:'")
            continue
        labels.add(label)
        try:
            res = Resources.model_validate(resources) if resources is not None else None
        except ValidationError as e:
            problems.extend(format_validation_error(e, Resources, f"{where}.resources"))
            continue
        try:
            opts = spec.options.model_validate(item)
        except ValidationError as e:
            problems.extend(format_validation_error(e, spec.options, where))
            continue
        entries.append(StageEntry(stage=name, label=label, resources=res, options=opts, raw=item))
    if problems:
        raise ConfigError(problems)
    if base_dir is not None:
        for entry in entries:
            resolve_paths(entry.options, base_dir)
    return entries
