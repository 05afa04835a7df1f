"""The output folder is a clean dataset: only documents under data/ and rejected/, a dataset card that
HF `datasets` loads, Parquet files that say which curate and which config made them; intermediates,
markers and logs live in the work folder beside it, removed on request."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing import REPO

from curate.pipeline import load_config, parse_config, run_config
from curate.pipeline.cli import main
from curate.pipeline.fingerprint import config_fingerprint, curate_version


def _rejected_rows(out: Path) -> int:
    return sum(pq.read_metadata(f).num_rows for f in (out / "rejected").glob("*/*.parquet"))


def test_nothing_intermediate_remains_in_the_output(sample_run: tuple[Path, dict]) -> None:
    out, stats = sample_run
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "_curate_run.json", "data", "rejected", "stats.json"]
    parquet = sorted(out.rglob("*.parquet"))
    assert all(p.parent.name == "data" or p.parent.parent.name == "rejected" for p in parquet)
    assert not list(out.rglob("*.partial")) and not list(out.rglob("completions"))
    work = Path(f"{out}.work")
    assert (work / "logs" / "00_main" / "completions").is_dir() and (work / "intermediate").is_dir()


def test_loaders_count_documents_not_intermediates(sample_run: tuple[Path, dict]) -> None:
    import duckdb
    import polars as pl

    out, stats = sample_run
    kept, rejected = stats["output_docs"], _rejected_rows(out)
    assert kept == 1204 and rejected > 0
    every = duckdb.sql(f"select count(*) from read_parquet('{out}/**/*.parquet', union_by_name=true)").fetchall()[0][0]
    assert every == kept + rejected
    assert pl.scan_parquet(f"{out}/data/*.parquet").select(pl.len()).collect().item() == kept
    # every dropped document is a rejected row (the sample has no broken records, only empty texts)
    assert rejected == sum(s["dropped_total"] for s in stats["stages"] if "docs_in" in s)


def test_datasets_load_dataset_reads_the_kept_documents(sample_run: tuple[Path, dict]) -> None:
    import datasets

    out, stats = sample_run
    kept = datasets.load_dataset(str(out), split="train")
    assert kept.num_rows == stats["output_docs"] and "text" in kept.column_names and "ft_dclm" in kept.column_names
    rej = datasets.load_dataset(str(out), "rejected", split="train")
    assert rej.num_rows == _rejected_rows(out) and set(rej["drop_stage"]) >= {"gneissweb_ensemble"}
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["default", "rejected"]
    assert "| `ft_dclm` | float" in card and "## Config" in card and "| gneissweb_ensemble | 1,6" in card


def test_parquet_files_say_which_curate_and_config_made_them(sample_run: tuple[Path, dict]) -> None:
    out, _ = sample_run
    fp = config_fingerprint(load_config(REPO / "configs" / "sample.yaml", {"output.path": str(out)}))["fingerprint"]
    for f in list((out / "data").glob("*.parquet")) + list((out / "rejected").glob("*/*.parquet")):
        meta = pq.read_schema(f).metadata
        assert meta[b"curate_version"].decode() == curate_version()
        assert meta[b"curate_config_fingerprint"].decode() == fp


def _small(tmp_path: Path, sample_dir: Path, **output) -> dict:
    return {
        "name": "small",
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "c4-*.jsonl.gz"},
        "output": {"path": str(tmp_path / "o"), "keep_rejected": True, **output},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
        "stages": [{"stage": "length_filter", "min_words": 40}, {"stage": "exact_doc_dedup"}],
    }


def test_work_folder_removed_by_config_switch_then_rerun_has_nothing_to_do(
    tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    c = _small(tmp_path, sample_dir, keep_work=False)
    first = run_config(parse_config(c), progress=False)
    assert first["complete"] and not (tmp_path / "o.work").exists()
    capsys.readouterr()
    again = run_config(parse_config(c), progress=False)
    assert "nothing to do" in capsys.readouterr().err and again["wall_s"] == first["wall_s"]


def test_curate_clean_removes_the_work_folder(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture) -> None:
    c = _small(tmp_path, sample_dir)
    run_config(parse_config(c), progress=False)
    assert (tmp_path / "o.work").is_dir()
    assert main(["clean", str(tmp_path / "o")]) == 0
    assert not (tmp_path / "o.work").exists() and (tmp_path / "o" / "data").is_dir()
    assert "removed" in capsys.readouterr().out


def test_a_run_that_drops_everything_publishes_an_empty_dataset(
    tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    c = _small(tmp_path, sample_dir)
    c["stages"] = [{"stage": "length_filter", "min_words": 10**6}]
    stats = run_config(parse_config(c), progress=False)
    assert stats["complete"] and stats["output_docs"] == 0
    files = sorted((tmp_path / "o" / "data").glob("*.parquet"))
    assert files
    schema = pq.read_schema(files[0])
    assert {"id", "text", "source_file", "source_record"} <= set(schema.names)
    assert sum(pq.read_metadata(f).num_rows for f in files) == 0
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(c))
    assert main(["stats", str(tmp_path / "o")]) == 0
    assert main(["report", str(tmp_path / "o"), "--html", str(tmp_path / "r.html")]) == 0
    assert main(["diff", str(tmp_path / "o")]) == 0


def test_stats_after_a_failed_run_show_stages_that_never_ran(
    tmp_path: Path, failing_input: Path, capsys: pytest.CaptureFixture
) -> None:
    c = {
        "input": {"format": "jsonl", "path": str(failing_input)},
        "output": {"path": str(tmp_path / "o")},
        "on_error": "fail",
        "executor": {"kind": "local", "tasks": 1},
        "stages": [{"stage": "length_filter", "min_words": 2}, {"stage": "exact_doc_dedup"}],
    }
    from curate.pipeline import CurateError

    with pytest.raises(CurateError):
        run_config(parse_config(c), progress=False)
    saved = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert not saved["complete"] and not any(s.get("ran") for s in saved["stages"])
    capsys.readouterr()
    assert main(["stats", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "INCOMPLETE" in err and err.count("not run") >= 2


def test_a_metadata_column_never_in_the_input_is_a_warning(tmp_path: Path, sample_dir: Path, capsys) -> None:
    c = _small(tmp_path, sample_dir, metadata_columns=["url", "timestamp_of_nothing"])
    stats = run_config(parse_config(c), progress=False)
    assert stats["warnings"] == [
        "output.metadata_columns: 'timestamp_of_nothing' is not a field of the input (written as an empty column)"
    ]
    from curate.pipeline.stats import print_summary

    print_summary(stats)
    assert "warning: output.metadata_columns: 'timestamp_of_nothing'" in capsys.readouterr().err
    schema = pq.read_schema(next((tmp_path / "o" / "data").glob("*.parquet")))
    assert str(schema.field("url").type) == "string" and "timestamp_of_nothing" in schema.names
