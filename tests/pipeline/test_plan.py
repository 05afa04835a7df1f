"""Plans: jobs, handoffs between jobs, and compilation to datatrove's Local / Slurm / Ray executors."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor

from curate.pipeline import ConfigError, build_plan, parse_config, run_config, run_stages
from curate.pipeline.executors import build_executors
from curate.pipeline.writers import HandoffReader, HandoffWriter, OutputWriter


def cfg(sample_dir: Path, out: Path, stages, **executor) -> dict:
    return {
        "input": {"format": "jsonl", "path": str(sample_dir)},
        "output": {"path": str(out)},
        "executor": {"kind": "local", "tasks": 2, **executor},
        "stages": stages,
    }


GPU_STAGE = {
    "stage": "length_filter",
    "label": "refine",
    "min_words": 20,
    "resources": {"tasks": 1, "gpus_per_task": 1, "partition": "gpu", "cpus_per_task": 4, "time": "2:00:00"},
}


def test_resources_start_a_job_with_a_handoff(sample_dir: Path, tmp_path: Path):
    plan = build_plan(parse_config(cfg(sample_dir, tmp_path, [{"stage": "length_filter", "min_words": 5}, GPU_STAGE])))
    assert [j.name for j in plan.jobs] == ["main", "refine"]
    first, second = plan.jobs
    assert isinstance(first.steps[-1], HandoffWriter)
    assert isinstance(second.steps[0], HandoffReader)
    assert first.steps[-1].output_folder.path == second.steps[0].data_folder.path
    assert isinstance(second.steps[-1], OutputWriter)
    assert first.tasks == 2 and second.tasks == 1
    assert second.resources.gpus_per_task == 1


def test_slurm_compilation_carries_resources(sample_dir: Path, tmp_path: Path):
    c = cfg(sample_dir, tmp_path, [{"stage": "length_filter"}, GPU_STAGE], kind="slurm", workers=10)
    c["executor"]["slurm"] = {
        "partition": "cpu",
        "time": "4:00:00",
        "cpus_per_task": 2,
        "mem_per_cpu_gb": 3,
        "sbatch_args": {"account": "proj"},
        "venv_path": "/opt/venv/bin/activate",
    }
    plan = build_plan(parse_config(c))
    cpu, gpu = build_executors(plan)
    assert isinstance(cpu, SlurmPipelineExecutor) and isinstance(gpu, SlurmPipelineExecutor)
    assert gpu.depends is cpu and cpu.depends is None
    assert (cpu.partition, cpu.time, cpu.cpus_per_task, cpu.mem_per_cpu_gb, cpu.gpus_per_task) == (
        "cpu",
        "4:00:00",
        2,
        3,
        0,
    )
    assert (gpu.partition, gpu.time, gpu.cpus_per_task, gpu.gpus_per_task, gpu.tasks) == ("gpu", "2:00:00", 4, 1, 1)
    assert cpu.tasks == 2 and cpu.workers == 10
    assert cpu.job_name == "curate-00-main" and gpu.job_name == "curate-01-refine"
    args = cpu.get_sbatch_args(max_array=2)
    assert args["account"] == "proj" and "qos" not in args  # no invented QOS
    assert cpu.venv_path == "/opt/venv/bin/activate"
    assert str(cpu.logging_dir.path).endswith("logs/00_main") and str(gpu.logging_dir.path).endswith("logs/01_refine")


def test_ray_and_local_compilation(sample_dir: Path, tmp_path: Path):
    c = cfg(sample_dir, tmp_path, [GPU_STAGE], kind="ray")
    c["executor"]["ray"] = {"cpus_per_task": 2, "mem_per_cpu_gb": 1.5}
    plan = build_plan(parse_config(c))
    cpu, gpu = build_executors(plan)
    assert isinstance(cpu, RayPipelineExecutor) and gpu.depends is cpu
    assert cpu.cpus_per_task == 2 and cpu.mem_per_cpu_gb == 1.5 and gpu.gpus_per_task == 1
    local = build_executors(plan, kind="local")
    assert all(isinstance(e, LocalPipelineExecutor) for e in local) and local[1].depends is local[0]


def test_two_job_run_equals_one_job_run(sample_dir: Path, tmp_path: Path):
    stages_one = [
        {"stage": "length_filter", "min_words": 5},
        {"stage": "length_filter", "label": "refine", "min_words": 20},
    ]
    stages_two = [{"stage": "length_filter", "min_words": 5}, dict(GPU_STAGE, resources={"tasks": 1})]
    s1 = run_config(parse_config(cfg(sample_dir, tmp_path / "one", stages_one)), progress=False)
    s2 = run_config(parse_config(cfg(sample_dir, tmp_path / "two", stages_two)), progress=False)

    def rows(p: Path) -> set:
        return {(r["id"], r["text"]) for f in p.glob("data/*.parquet") for r in pq.read_table(f).to_pylist()}

    assert rows(tmp_path / "one") == rows(tmp_path / "two")
    assert len(rows(tmp_path / "one")) == s1["output_docs"] == s2["output_docs"]
    assert s2["complete"] and s2["conserved"] and [j["name"] for j in s2["jobs"]] == ["main", "refine"]
    handoff = [s for s in s2["stages"] if s["label"].startswith("handoff")]
    assert handoff[0]["docs_out"] == handoff[1]["docs_in"]  # nothing lost between jobs


def test_step_objects_and_dicts_mix_in_process():
    from curate.pipeline.stages.length_filter import LengthFilter, LengthFilterOptions

    docs = ["one two three", "one two three four five six", {"id": "x", "text": "a b c d e f g h"}]
    res = run_stages(docs, [LengthFilter(LengthFilterOptions(min_words=4)), {"stage": "length_filter", "min_words": 7}])
    assert [d.id for d in res.docs] == ["x"]
    assert [s["docs_in"] for s in res.stats] == [3, 3, 2]
    with pytest.raises(ConfigError, match="unknown stage"):
        run_stages(docs, [{"stage": "nope"}])


def test_in_process_barrier_runs_jobs_in_order():
    docs = [f"word {' '.join(['x'] * i)}" for i in range(30)]
    res = run_stages(docs, [dict(GPU_STAGE, min_words=10)])
    assert len(res.docs) == 21
    assert [s["job"] for s in res.stats].count("refine") == 2  # handoff read + the stage
