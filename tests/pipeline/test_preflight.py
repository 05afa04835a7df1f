"""What can be known before work is checked before work: validate, plan and the start of a run refuse a
config whose models, tokenizers, rule names, input or output are wrong, in one line per problem."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from curate_testing import REPO

from curate.pipeline import ConfigError, load_config, parse_config, run_config
from curate.pipeline.cli import main
from curate.pipeline.preflight import preflight

MODELS = REPO / "filters" / "assets" / "models"
GPT2 = REPO / "dedup" / "assets" / "gpt2" / "tokenizer.json"


def ensemble(**over) -> dict:
    st = {
        "stage": "gneissweb_ensemble",
        "quality_models": [
            {"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "preprocess": "dclm"},
            {"name": "cosmo", "path": str(MODELS / "quality_cosmo.ftz")},
        ],
        "category_models": [
            {"name": c, "path": str(MODELS / f"category_{c}.ftz")}
            for c in ("medical", "education", "technology", "science")
        ],
        "tokenizer": str(GPT2),
    }
    st.update(over)
    return st


def cfg(tmp_path: Path, stages: list[dict], sample_dir: Path, **top) -> dict:
    c = {
        "input": {"format": "jsonl", "path": str(sample_dir), "glob": "*.jsonl.gz"},
        "output": {"path": str(tmp_path / "out"), "metadata_columns": ["url"]},
        "executor": {"kind": "local", "tasks": 1},
        "stages": stages,
    }
    c.update(top)
    return c


def write(tmp_path: Path, c: dict, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(c))
    return p


def problems_of(c: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        preflight(parse_config(c), download=False)
    return e.value.problems


def test_the_valid_ensemble_passes(tmp_path: Path, sample_dir: Path) -> None:
    preflight(parse_config(cfg(tmp_path, [ensemble()], sample_dir)), download=False)


def test_missing_model_file_fails_validate_not_the_last_job(tmp_path: Path, sample_dir: Path, capsys) -> None:
    c = cfg(
        tmp_path,
        [
            {"stage": "exact_doc_dedup"},
            {"stage": "minhash_dedup"},
            ensemble(quality_models=[{"name": "dclm", "path": str(tmp_path / "nope.bin")}]),
        ],
        sample_dir,
    )
    assert main(["validate", str(write(tmp_path, c))]) == 2
    err = capsys.readouterr().err
    assert "stages[2].quality_models[0] (dclm): model" in err and "nope.bin' not found" in err
    # the run refuses before any task: no log folder, no output
    with pytest.raises(ConfigError, match="nope.bin"):
        run_config(parse_config(c), progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.work").exists()


def test_fasttext_model_must_load_and_have_the_label(tmp_path: Path, sample_dir: Path) -> None:
    cut = tmp_path / "cut.ftz"
    cut.write_bytes((MODELS / "quality_dclm.ftz").read_bytes()[:300])
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all" * 10)
    c = cfg(
        tmp_path,
        [
            ensemble(
                quality_models=[
                    {"name": "dclm", "path": str(MODELS / "quality_dclm.ftz"), "label": "__label__good"},
                    {"name": "cosmo", "path": str(cut)},
                    {"name": "other", "path": str(junk)},
                ]
            )
        ],
        sample_dir,
    )
    found = problems_of(c)
    assert any("(dclm)" in p and "'__label__good' is not one of them" in p and "__label__hq" in p for p in found)
    assert any("(cosmo)" in p and "cannot be loaded as a fastText model" in p for p in found)
    assert any("(other)" in p and "wrong magic number" in p for p in found)


def test_a_truncated_dense_bin_is_refused(tmp_path: Path, sample_dir: Path, filters_models: dict[str, str]) -> None:
    from curate.filters.fasttext_header import NotFastText, read_labels

    full = Path(filters_models["dclm"])
    import fasttext

    assert read_labels(str(full)) == list(fasttext.load_model(str(full)).get_labels())
    cut = tmp_path / "cut.bin"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(NotFastText, match="cut short"):
        read_labels(str(cut))


def test_missing_tokenizer_and_unparsable_tokenizer(tmp_path: Path, sample_dir: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    found = problems_of(
        cfg(
            tmp_path,
            [
                ensemble(tokenizer=str(tmp_path / "missing.json")),
                {"stage": "extreme_tokenization", "tokenizer": str(bad), "label": "tpc"},
            ],
            sample_dir,
        )
    )
    assert any(p.startswith("stages[0].tokenizer: tokenizer") and "missing.json' not found" in p for p in found)
    assert any(p.startswith("stages[1] (tpc).tokenizer: tokenizer") and "does not parse" in p for p in found)


def test_rule_names_must_be_known_columns(tmp_path: Path, sample_dir: Path) -> None:
    stages = [ensemble(annotate_only=True), {"stage": "quality_rule", "keep": "ft_dlcm > 0.5 and eflaw < 30"}]
    found = problems_of(cfg(tmp_path, stages, sample_dir))
    assert len(found) == 1 and "stages[1].keep: 'ft_dlcm' is not a clause, a param, or a column" in found[0]
    assert "did you mean 'ft_dclm'?" in found[0]
    # a column of the input is fine, and so is one an earlier stage writes
    preflight(
        parse_config(
            cfg(
                tmp_path,
                [ensemble(annotate_only=True), {"stage": "quality_rule", "keep": "ft_dclm > 0.5 and url != ''"}],
                sample_dir,
            )
        ),
        download=False,
    )
    # the ensemble's own rule may only use its own columns
    found = problems_of(cfg(tmp_path, [ensemble(clauses={"FT": "ft_dclm > dclm_min or eduscore > 2"})], sample_dir))
    assert "'eduscore' is not a clause" in found[0]


def test_input_and_output_paths_are_checked_by_validate(tmp_path: Path, sample_dir: Path, capsys) -> None:
    c = cfg(tmp_path, [], sample_dir)
    c["input"]["path"] = str(tmp_path / "no-such-input")
    out_file = tmp_path / "a-file"
    out_file.write_text("x")
    c["output"]["path"] = str(out_file)
    assert main(["validate", str(write(tmp_path, c))]) == 2
    err = capsys.readouterr().err
    assert "input.path:" in err and "does not exist" in err
    assert f"output.path: '{out_file}' is a file" in err
    assert main(["plan", str(write(tmp_path, c))]) == 2


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, sample_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "proj" / "configs").mkdir(parents=True)
    shutil.copytree(sample_dir, tmp_path / "proj" / "in")
    shutil.copy(MODELS / "quality_dclm.ftz", tmp_path / "proj" / "dclm.ftz")
    c = {
        "input": {"format": "jsonl", "path": "../in"},
        "output": {"path": "../out"},
        "stages": [{"stage": "fasttext_annotate", "models": [{"name": "dclm", "path": "../dclm.ftz"}]}],
    }
    path = write(tmp_path / "proj" / "configs", c)
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    assert main(["plan", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input"]["path"] == str(tmp_path / "proj" / "in")
    assert d["output"] == str(tmp_path / "proj" / "out") and d["work_dir"] == str(tmp_path / "proj" / "out.work")
    loaded = load_config(path)
    assert loaded.entries[0].options.models[0].path == str(tmp_path / "proj" / "dclm.ftz")
    # a path given on the command line is relative to where the command runs
    assert load_config(path, {"output.path": "here"}).output.path == str(tmp_path / "here")


def _fake_hub_cache(home: Path, repo: str, filename: str, source: Path) -> Path:
    """The HF hub cache layout (models--OWNER--NAME/snapshots/REV/FILE, refs/main), as a download leaves it."""
    base = home / "hub" / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    shutil.copy(source, snap / filename)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text("0" * 40)
    return snap / filename


def test_hub_models_resolve_once_in_the_launcher(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id found in the HF cache (offline) is resolved before the run; tasks get the local file."""
    import huggingface_hub.constants as hc

    home = tmp_path / "hf"
    cached = _fake_hub_cache(home, "curate-test/quality", "model.ftz", MODELS / "quality_dclm.ftz")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    c = cfg(
        tmp_path,
        [
            {
                "stage": "fasttext_annotate",
                "models": [{"name": "q", "path": "curate-test/quality", "filename": "model.ftz"}],
            }
        ],
        sample_dir,
    )
    config = parse_config(c)
    preflight(config, download=True)
    assert config.entries[0].options.models[0].path == str(cached)
    stats = run_config(parse_config(c), progress=False)
    assert stats["complete"] and stats["conserved"]


def test_offline_default_ensemble_stops_at_once_in_one_line_per_model(tmp_path: Path, sample_dir: Path) -> None:
    c = cfg(tmp_path, [{"stage": "gneissweb_ensemble"}], sample_dir)
    path = write(tmp_path, c)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-hf"))
    for cmd in ("validate", "run"):
        t = time.time()
        r = subprocess.run(
            [sys.executable, "-m", "curate.pipeline.cli", cmd, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and time.time() - t < 60
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 + 7, r.stderr  # the heading, then 6 classifiers + the tokenizer
        assert "Traceback" not in r.stderr and "mlfoundations/fasttext-oh-eli5" in r.stderr
        assert "bigcode/starcoder" in r.stderr and "not available from the hub or the local HF cache" in r.stderr
    assert not (tmp_path / "out.work").exists()


def test_refiner_folder_needs_config_and_weights(tmp_path: Path, sample_dir: Path) -> None:
    empty = tmp_path / "refiner"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    found = problems_of(
        cfg(
            tmp_path,
            [
                {
                    "stage": "prox_refine",
                    "backend": "transformers",
                    "doc_model": str(empty),
                    "chunk_model": str(tmp_path / "absent"),
                }
            ],
            sample_dir,
        )
    )
    assert any(p.startswith("stages[0].doc_model: doc refiner") and "no weights" in p for p in found)
    assert any(p.startswith("stages[0].chunk_model: chunk refiner") and "not found" in p for p in found)
