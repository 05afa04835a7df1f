"""Compile a validated config into an ordered chain of datatrove jobs.

Reading top to bottom: the reader opens the first job; each configured stage's `build()` adds
steps to the current job through `PlanContext`; a stage that needs a barrier (MinHash's
multi-step pipeline, a GPU refinement with its own resources) closes the current job, whose
documents are handed to the next job through Parquet in the run's work folder (`OUTPUT.work/`
by default: never inside the dataset); the last job ends with the output writer. Jobs run in order, each depending on the one before (`depends=` in
datatrove), so on Slurm each job is its own array job with its own resources.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from datatrove.pipeline.base import PipelineStep

from curate.core.errors import ConfigError
from curate.core.stage_api import Column, get_stage
from curate.core.steps import Accounted

from .config import CurateConfig
from .fingerprint import config_fingerprint, curate_version, job_fingerprints, stage_fingerprints
from .layout import RunLayout, rejected_dir
from .readers import is_remote, list_input_files, make_reader, metadata_column_types
from .stage_entries import Resources, StageEntry
from .tokenize_output import tokenize_jobs
from .writers import HandoffReader, HandoffWriter, OutputWriter, output_schema


@dataclass
class Job:
    name: str
    steps: list[PipelineStep]
    tasks: int
    workers: int
    resources: Resources | None = None
    stages: list[str] = field(default_factory=list)
    writes_output: bool = False  # the job ending with the data/ writer
    # work folders only this job writes (its handoff, a dedup side job's signatures): resume removes them
    # when the job is redone and never otherwise, so a kept job's output stays under a redone job that reads it
    writes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    config: CurateConfig
    jobs: list[Job]
    layout: RunLayout
    schema: pa.Schema
    columns: list[Column]
    stage_labels: list[str]
    warnings: list[str] = field(default_factory=list)  # shown with the run's summary
    # what decides the output, computed once here (fingerprint.py): the config's, each stage's, each job's
    fingerprint: dict[str, Any] = field(default_factory=dict)
    stage_fingerprints: dict[str, str] = field(default_factory=dict)
    job_fingerprints: list[str] = field(default_factory=list)

    def job_logging_dir(self, index: int) -> str:
        return self.layout.job_logging_dir(index, self.jobs[index].name)

    @property
    def output_dir(self) -> str:
        return self.layout.output_dir

    @property
    def work_dir(self) -> str:
        return self.layout.work_dir

    @property
    def logging_dir(self) -> str:
        return self.layout.logging_dir

    @property
    def intermediate_dir(self) -> str:
        return self.layout.intermediate_dir

    @property
    def data_dir(self) -> str:
        return self.layout.data_dir


class PlanContext:
    """What a stage's `build(options, ctx)` uses to add itself to the plan."""

    def __init__(
        self,
        *,
        tasks: int,
        workers: int,
        on_error: str,
        intermediate_dir: str,
        on_stage_error: str = "fail",
        output_dir: str,
        output: Any = None,
        rejected_schema: pa.Schema | None = None,
        file_metadata: dict[str, str] | None = None,
    ) -> None:
        self._file_metadata = file_metadata
        self.intermediate_dir = intermediate_dir  # the run's intermediate/ folder (layout.py)
        self.output_dir = output_dir
        self.on_error = on_error
        self.on_stage_error = on_stage_error
        self.jobs: list[Job] = []
        self._default_tasks, self._default_workers = tasks, workers
        self._output = output
        self._rejected_schema = rejected_schema
        self._labels: set[str] = set()
        self.stage_label = "read"
        self._current = Job("main", [], tasks, workers)
        self._unclaimed: list[str] = []  # work paths handed out and not yet owned by a job

    # -- for stages --------------------------------------------------------------------------
    @property
    def tasks(self) -> int:
        """Tasks of the job a stage is being added to."""
        return self._current.tasks

    def add(self, *steps: PipelineStep) -> None:
        """Append steps to the current job. Curate steps get the stage label, on_error and rejected/ writer."""
        for step in steps:
            if isinstance(step, Accounted) and not step.plumbing:
                label = self.stage_label
                n = 2
                base = label
                while label in self._labels:
                    label, n = f"{base}.{n}", n + 1
                self._labels.add(label)
                step.configure(
                    label=label,
                    on_error=self.on_error,
                    rejected_writer=self._rejected_writer(label),
                    on_stage_error=self.on_stage_error,
                )
            self._current.steps.append(step)
        if self.stage_label not in self._current.stages:
            self._current.stages.append(self.stage_label)

    def work_path(self, *parts: str) -> str:
        """A scratch folder for this run (e.g. MinHash signatures), in the work folder (not the dataset)."""
        path = posixpath.join(self.intermediate_dir, *parts)
        if path not in self._unclaimed:
            self._unclaimed.append(path)
        return path

    def barrier(self, name: str, resources: Resources | None = None) -> str:
        """End the current job here; the following steps run in a new job reading its documents.

        Returns the folder holding the handed-off documents (e.g. for a side job to read them too).
        """
        folder = posixpath.join(self.intermediate_dir, f"{len(self.jobs):02d}_{self._current.name}_to_{name}")
        self._current.steps.append(HandoffWriter(folder))
        self._current.writes += [*self._unclaimed, folder]
        self._unclaimed = []
        self.jobs.append(self._current)
        tasks = resources.tasks if resources and resources.tasks else self._default_tasks
        workers = resources.workers if resources and resources.workers else self._default_workers
        self._current = Job(name, [HandoffReader(folder)], tasks, workers, resources)
        return folder

    def add_job(
        self,
        name: str,
        steps: list[PipelineStep],
        tasks: int,
        resources: Resources | None = None,
        writes: list[str] | None = None,
    ) -> None:
        """A job that consumes no documents of the main flow (e.g. MinHash buckets), run before the current one.

        `writes`: the work folders this job writes (resume removes them when it redoes the job). Without it the
        job owns every `work_path()` handed out since the last job was added.
        """
        workers = min(tasks, self._default_workers) if self._default_workers > 0 else tasks
        owned = list(writes) if writes is not None else list(self._unclaimed)
        self._unclaimed = [p for p in self._unclaimed if p not in owned]
        self.jobs.append(Job(name, list(steps), tasks, workers, resources, stages=[self.stage_label], writes=owned))

    def handoff_reader(self, folder: str) -> HandoffReader:
        """A reader over documents handed off by `barrier()`."""
        return HandoffReader(folder)

    # -- internal ----------------------------------------------------------------------------
    def _rejected_writer(self, label: str) -> OutputWriter | None:
        if self._rejected_schema is None:
            return None
        out = self._output
        return OutputWriter(
            rejected_dir(self.output_dir, label),
            self._rejected_schema,
            compression=out.compression,
            rows_per_group=out.rows_per_group,
            label=f"rejected:{label}",
            file_metadata=self._file_metadata,
        )

    def finish(self, last_step: PipelineStep | None) -> list[Job]:
        if last_step is not None:
            self._current.steps.append(last_step)
            self._current.writes_output = True
        self._current.writes += self._unclaimed
        self._unclaimed = []
        self.jobs.append(self._current)
        return self.jobs


def add_stages(ctx: PlanContext, entries: list[StageEntry]) -> None:
    for entry in entries:
        ctx.stage_label = entry.label
        if entry.resources is not None:
            ctx.barrier(entry.label, entry.resources)
        get_stage(entry.stage).build(entry.options, ctx)


def stage_columns(entries: list[StageEntry]) -> list[Column]:
    cols: list[Column] = []
    for e in entries:
        cols.extend(get_stage(e.stage).columns(e.options))
    return cols


def build_plan(config: CurateConfig, check_inputs: bool = True) -> Plan:
    """Compile the config into jobs. With check_inputs, refuse a local input that matches no file."""
    if check_inputs and not is_remote(config.input.path):
        files = list_input_files(config.input)
        if not files:
            raise ConfigError(
                f"input.path: no files under {config.input.path!r}"
                + (f" match glob {config.input.glob!r}" if config.input.glob else "")
                + " (check the path, the glob and input.recursive)"
            )
    layout = RunLayout.of(config)
    output_dir, intermediate_dir = layout.output_dir, layout.intermediate_dir
    fingerprint = config_fingerprint(config)
    columns = stage_columns(config.entries)
    meta_types = _metadata_types(config)
    schema = output_schema(columns, meta_types)
    rejected_schema = output_schema(columns, meta_types, rejected=True) if config.output.keep_rejected else None

    ex, out = config.executor, config.output
    file_metadata = {
        "curate_version": curate_version(),
        "curate_config_fingerprint": fingerprint["fingerprint"],
        "curate_run": config.name,
    }
    ctx = PlanContext(
        tasks=ex.tasks,
        workers=ex.workers,
        on_error=config.on_error,
        on_stage_error=config.on_stage_error,
        intermediate_dir=intermediate_dir,
        output_dir=output_dir,
        output=out,
        rejected_schema=rejected_schema,
        file_metadata=file_metadata,
    )
    ctx.add(make_reader(config.input, config.on_error))
    add_stages(ctx, config.entries)
    jobs = ctx.finish(
        OutputWriter(
            layout.data_dir,
            schema,
            compression=out.compression,
            rows_per_group=out.rows_per_group,
            file_metadata=file_metadata,
        )
    )
    # output.tokenize: token shards from data/, in jobs of their own after the writer's (tokenize_output.py)
    if out.tokenize is not None:
        for t in tokenize_jobs(out.tokenize, output_dir, intermediate_dir, ex.tasks):
            jobs.append(Job(t.name, t.steps, t.tasks, ex.workers, stages=[t.fingerprint], writes=t.writes))
    missing = [n for n, t in meta_types.items() if t is None and n not in ("id", "text")]
    warnings = [
        f"output.metadata_columns: {n!r} is not a field of the input (written as an empty column)" for n in missing
    ]
    stages = stage_fingerprints(config)
    return Plan(
        config,
        jobs,
        layout,
        schema,
        columns,
        [e.label for e in config.entries],
        warnings,
        fingerprint=fingerprint,
        stage_fingerprints=stages,
        job_fingerprints=job_fingerprints(config, jobs, stages),
    )


def _metadata_types(config: CurateConfig) -> dict[str, pa.DataType | None]:
    """Each `output.metadata_columns` field with the input's Arrow type (read from the input before the run)."""
    names = config.output.metadata_columns
    if not names:
        return {}
    return metadata_column_types(config.input, names)  # declared types; a remote input's others are strings


def step_label(step: PipelineStep) -> str:
    """A step as plan and progress name it: its stage label, or datatrove's name without its emoji."""
    name = getattr(step, "label", None) or step.name
    return name.encode("ascii", "ignore").decode().strip() or name


def job_title(index: int, job: Job) -> str:
    """`job 7 minhash_dedup (minhash_dedup, gneissweb_ensemble, prox_refine)`: what the job runs."""
    stages = [s for s in job.stages if s != job.name]
    return f"job {index} {job.name}" + (f" ({', '.join(job.stages)})" if stages else "")


def describe(plan: Plan, input_files: list[str] | None) -> dict[str, Any]:
    """A JSON-able summary of the plan (what `curate plan` prints)."""
    ex = plan.config.executor
    return {
        "name": plan.config.name,
        "executor": ex.kind,
        "input": {"format": plan.config.input.format, "path": plan.config.input.path, "files": input_files},
        "output": plan.output_dir,
        "work_dir": plan.work_dir,
        "jobs": [
            {
                "name": j.name,
                "tasks": j.tasks,
                "workers": j.workers,
                "resources": j.resources.model_dump(exclude_none=True) if j.resources else None,
                "runs": j.stages,
                "steps": [step_label(s) for s in j.steps],
            }
            for j in plan.jobs
        ],
        "columns": [f.name for f in plan.schema],
    }
