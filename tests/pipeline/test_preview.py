"""`curate preview`: the sample it draws, the dedup model it fits, and how close its projection comes to a
real full run of the same config (a corpus 20x the sample, with planted duplicate clusters)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing import REPO
from curate_testing.preview_corpus import build_corpus, config

from curate.pipeline.cli import main
from curate.pipeline.config import load_config, parse_config
from curate.pipeline.preview.project import fit_clusters, memory_per_task_gb, wall_projection
from curate.pipeline.preview.sample import draw_sample, write_sample
from curate.pipeline.run import run_config


def _jsonl(folder: Path, files: int, docs: int) -> Path:
    folder.mkdir(parents=True)
    for k in range(files):
        with open(folder / f"p{k}.jsonl", "w") as f:
            for i in range(docs):
                f.write(json.dumps({"id": f"{k}-{i}", "text": f"document {k} {i} " + "word " * (i % 50)}) + "\n")
    return folder


def _input(folder: Path, fmt: str = "jsonl") -> object:
    return parse_config({"input": {"format": fmt, "path": str(folder)}, "output": {"path": str(folder) + "-out"}}).input


def test_jsonl_sample_reads_byte_ranges_of_every_file(tmp_path: Path):
    inp = _input(_jsonl(tmp_path / "in", files=4, docs=20000))  # 14 MB: above the 64 blocks of 64 KiB the count reads
    s = draw_sample(inp, 40, None, seed=3, count_whole_below=0)  # 0: the count from random blocks too
    assert s.kind == "lines" and s.size == 40
    rows = [json.loads(line) for line in s.units]  # every drawn line is a whole record
    assert len({r["id"] for r in rows}) == 40
    assert len({r["id"].split("-")[0] for r in rows}) == 4  # from across all files
    assert s.bytes_read < s.input_bytes / 2  # only the sampled part was read
    assert abs(s.est_total_docs / 80000 - 1) < 0.05
    assert draw_sample(inp, 40, None, seed=3, count_whole_below=0).units == s.units  # seeded
    folder = write_sample(s, str(tmp_path / "sample"), 10)
    assert (Path(folder) / "sample.jsonl").read_bytes() == b"".join(s.units[:10])  # a prefix: a nested sub-sample


def test_fraction_and_compressed_and_parquet(tmp_path: Path):
    src = _jsonl(tmp_path / "in", files=2, docs=500)
    gz = tmp_path / "gz"
    gz.mkdir()
    for f in src.iterdir():
        (gz / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    s = draw_sample(_input(gz), None, 0.1, seed=0)
    assert s.size == 100 and s.est_total_docs == 1000  # whole files: counted exactly
    pqdir = tmp_path / "pq"
    pqdir.mkdir()
    for k in range(3):
        t = pa.table({"id": [f"{k}-{i}" for i in range(400)], "text": ["x y z"] * 400})
        pq.write_table(t, pqdir / f"{k}.parquet", row_group_size=50)
    s = draw_sample(_input(pqdir, "parquet"), 60, None, seed=1)
    assert s.kind == "rows" and s.size == 60 and s.est_total_docs == 1200
    assert "2 of 24 Parquet row group(s)" in s.method  # only the row groups needed


def test_cluster_fit_recovers_its_model():
    c, k, n = 6, 25, 2000
    pts = [(q, c * (k * q - 1 + (1 - q) ** k)) for q in (0.2, 0.1, 0.05)]
    fit = fit_clusters(pts, n)
    assert fit is not None and fit["range"][0] <= c * (k - 1) <= fit["range"][1]
    assert abs(fit["removed_full"] / (c * (k - 1)) - 1) < 0.1
    assert fit_clusters([(0.05, 0), (0.025, 0)], n) is None  # no duplicates seen: no fit, said so by the caller


def test_wall_and_memory_follow_the_executor(tmp_path: Path):
    stages = [{"job": "main", "projected": {"cpu_s": 800.0}}, {"job": "gpu", "projected": {"cpu_s": 100.0}}]
    jobs = [{"name": "main", "tasks": 16, "workers": 4}, {"name": "gpu", "tasks": 2, "workers": -1}]
    w = wall_projection(stages, jobs, input_files=8)  # 8 files: only 8 of the 16 first-job tasks have work
    assert [j["tasks_with_work"] for j in w["jobs"]] == [8, 2]
    assert w["jobs"][0]["wall_s"] == 800 / 8 * 2 and w["jobs"][1]["wall_s"] == 50  # 2 rounds of 4; 2 at once
    raw = {"input": {"format": "jsonl", "path": str(tmp_path)}, "output": {"path": str(tmp_path / "o")}}
    slurm = parse_config({**raw, "executor": {"kind": "slurm", "slurm": {"cpus_per_task": 4, "mem_per_cpu_gb": 3}}})
    assert memory_per_task_gb(slurm.executor)[0] == 12


@pytest.fixture(scope="module")
def accuracy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("preview")
    inp = build_corpus(root / "in", docs=2000)
    cfg_path = root / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(config(inp, root / "out")))
    return {"root": root, "config": cfg_path}


@pytest.mark.slow
def test_preview_projects_the_full_run(accuracy: dict, capsys: pytest.CaptureFixture[str]):
    cfg_path, root = accuracy["config"], accuracy["root"]
    assert main(["preview", str(cfg_path), "--docs", "100", "--seed", "0", "--json"]) == 0  # 5 % of 2,000
    r = json.loads(capsys.readouterr().out)
    assert not (root / "out").exists()  # the real output is never touched
    assert main(["plan", str(cfg_path), "--json"]) == 0  # plan shows the saved preview of this config
    assert json.loads(capsys.readouterr().out)["preview"]["fingerprint"] == r["fingerprint"]
    stats = run_config(load_config(cfg_path), progress=False)  # the real run, after the preview (work folder shared)
    full = {s["label"]: s for s in stats["stages"]}
    proj = {row["label"]: row for row in r["stages"]}
    assert r["full"]["docs_estimated"] == full["read"]["docs_in"]  # a small input's newlines are counted
    for label in ("length_filter", "gneissweb_ensemble"):  # filtering: the sample's ratio, with its 95 % interval
        p, f = proj[label]["projected"], full[label]
        lo, hi = (x / p["docs_in"] for x in p["docs_out_95"])
        assert lo <= f["docs_out"] / f["docs_in"] <= hi, (label, lo, hi, f)
    for label in ("exact_doc_dedup", "minhash_dedup"):  # dedup: an estimate, never the sample's retention
        p, f = proj[label]["projected"], full[label]
        assert p["basis"].startswith("estimate")
        lo, hi = (x / p["docs_in"] for x in p["dedup_fit"]["docs"]["range"])  # removed, as a share of the input
        assert lo <= f["dropped_total"] / f["docs_in"] <= hi, (label, lo, hi, f["dropped_total"], f["docs_in"])
    kept = stats["output_docs"]
    assert abs(r["kept_docs"] / kept - 1) <= 0.15, (r["kept_docs"], kept)
    assert np.isfinite(r["wall"]["wall_s"]) and r["memory"]["peak_gb_per_task"] > 0


@pytest.mark.slow
def test_page_shows_drops_and_edits(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """The bundled sample config (ProX's boilerplate backend edits documents): the page holds both kinds."""
    page = tmp_path / "preview.html"
    args = [
        "preview",
        str(REPO / "configs" / "sample.yaml"),
        "--docs",
        "60",
        "--output",
        str(tmp_path / "out"),
        "--html",
        str(page),
    ]
    assert main(args) == 0
    text = page.read_text()
    assert "<h3>gneissweb_ensemble</h3>" in text and "@@" in text  # a drop and an edit's line diff
    assert "compressed input is read as whole files" not in capsys.readouterr().out  # 2 files: both read
    assert not (tmp_path / "out").exists()
