"""Run stages in this process on an iterable of documents: for notebooks, tests and debugging.

    from curate.pipeline import run_stages
    result = run_stages(["some text", {"text": "...", "id": "a"}], [{"stage": "length_filter", "min_words": 5}])
    result.docs, result.stats

Stages are given as YAML-like dicts (validated exactly as in a config file) or as ready
`PipelineStep` objects. Stages that need a barrier (MinHash) run their jobs one after the other
with a scratch folder; nothing needs an executor.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from curate.core.errors import ConfigError
from curate.core.steps import Accounted, CurateStep

from .logs import quiet_console
from .plan import Job, PlanContext, add_stages
from .stage_entries import validate_stages
from .stats import step_record


class MemorySource(CurateStep):
    """Documents from memory: `Document`s, dicts with `text` (and optionally `id`, `metadata`), or strings."""

    name = "read memory"

    def __init__(self, items: Iterable[Any]) -> None:
        super().__init__("read")
        self.items = items

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for i, item in enumerate(self.items):
            if isinstance(item, Document):
                doc = item
            elif isinstance(item, str):
                doc = Document(text=item, id=str(i))
            elif isinstance(item, dict):
                item = dict(item)
                text = item.pop("text", None)
                if not isinstance(text, str):
                    self.record_in()
                    self.bad_record("<memory>", i, "missing_text" if text is None else "text_not_string")
                    continue
                meta = dict(item.pop("metadata", None) or {})
                doc_id = item.pop("id", None)
                meta.update(item)
                doc = Document(text=text, id=str(doc_id if doc_id is not None else i), metadata=meta)
            else:
                self.record_in()
                self.bad_record("<memory>", i, "not_a_document", type(item).__name__)
                continue
            self.record_in(len(doc.text))
            yield doc


@dataclass
class InProcessResult:
    docs: list[Document]
    stats: list[dict[str, Any]] = field(default_factory=list)

    def stage(self, label: str) -> dict[str, Any]:
        return next(s for s in self.stats if s["label"] == label)

    def table(self) -> Any:
        """A rich table of per-stage counts (display it in a notebook or print it with rich)."""
        from .stats import summary_table

        return summary_table({"run": "in-process", "complete": True, "stages": self.stats})


def _pipe(steps: list[PipelineStep], rank: int, world_size: int) -> Iterator[Document] | None:
    data = None
    for step in steps:
        data = step(data, rank, world_size)
    return data


def run_stages(
    docs: Iterable[Any],
    stages: list[dict[str, Any] | PipelineStep],
    on_error: str = "skip",
    work_dir: str | None = None,
) -> InProcessResult:
    """Run `stages` over `docs` in this process and return the surviving documents and per-stage stats."""
    if on_error not in ("skip", "fail"):
        raise ConfigError(f"on_error: {on_error!r} is not one of 'skip' (count bad records, go on) or 'fail'")
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="curate-")
        work_dir = tmp.name
    try:
        with quiet_console():
            return _run_stages(docs, stages, on_error, work_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run_stages(
    docs: Iterable[Any], stages: list[dict[str, Any] | PipelineStep], on_error: str, work_dir: str
) -> InProcessResult:
    ctx = PlanContext(tasks=1, workers=1, on_error=on_error, intermediate_dir=f"{work_dir}/_work", output_dir=work_dir)
    ctx.add(MemorySource(docs))
    dict_stages = [s for s in stages if isinstance(s, dict)]
    entries = validate_stages(dict_stages)
    it = iter(entries)
    for stage in stages:
        if isinstance(stage, dict):
            add_stages(ctx, [next(it)])
        else:
            ctx.stage_label = getattr(stage, "label", None) or stage.name
            ctx.add(stage)
    jobs: list[Job] = ctx.finish(None)
    out: list[Document] = []
    for i, job in enumerate(jobs):
        for rank in range(job.tasks):
            data = _pipe(job.steps, rank, job.tasks)
            if data is None:
                continue
            if i == len(jobs) - 1:
                out.extend(data)
            else:
                for _ in data:
                    pass
    stats = []
    for job in jobs:
        for step in job.steps:
            if isinstance(step, Accounted):
                st = step.stats
                stats.append(
                    step_record(
                        step.label or step.name, job.name, step.plumbing, st.stats.to_dict(), st.time_stats.total
                    )
                )
    return InProcessResult(out, stats)
