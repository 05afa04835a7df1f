"""Config schema: every mistake is reported with its key path, the bad value and the fix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from curate_testing import REPO

from curate.pipeline import ConfigError, load_config, parse_config
from curate.pipeline.cli import main

BASE = {"input": {"format": "jsonl", "path": "data/sample"}, "output": {"path": "out/x"}}


def cfg(**over):
    d = {k: dict(v) for k, v in BASE.items()}
    for k, v in over.items():
        d[k] = v
    return d


def problems(raw) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "test.yaml")
    return e.value.problems


def test_minimal_config_gets_defaults():
    c = parse_config(cfg())
    assert c.executor.kind == "local" and c.executor.tasks == 1
    assert c.output.compression == "zstd" and c.on_error == "skip"
    assert c.entries == []


def test_unknown_top_level_key_is_named_with_suggestion():
    (p,) = problems(cfg(executer={"kind": "local"}))
    assert p.startswith("executer: unknown key")
    assert "did you mean 'executor'" in p
    assert "allowed keys: name, input, output, executor, on_error, on_stage_error, plugins, stages" in p


def test_unknown_nested_key_lists_allowed_keys():
    (p,) = problems(cfg(executor={"kind": "slurm", "slurm": {"partiton": "gpu"}}))
    assert p.startswith("executor.slurm.partiton: unknown key")
    assert "did you mean 'partition'" in p


def test_wrong_type_shows_value_and_expectation():
    (p,) = problems(cfg(executor={"tasks": "many"}))
    assert p.startswith("executor.tasks:") and "'many'" in p and "integer" in p


def test_bad_literal_lists_allowed_values():
    (p,) = problems(cfg(executor={"kind": "kubernetes"}))
    assert "executor.kind" in p and "'local', 'ray' or 'slurm'" in p and "'kubernetes'" in p


def test_missing_required_key():
    (p,) = problems({"output": {"path": "x"}})
    assert p == "input: required key is missing"


def test_all_problems_reported_at_once():
    ps = problems(cfg(executor={"tasks": 0, "workers": 0}, on_error="explode"))
    assert len(ps) == 3
    assert any(p.startswith("executor.tasks:") for p in ps)
    assert any(p.startswith("executor.workers:") and "-1" in p for p in ps)
    assert any(p.startswith("on_error:") for p in ps)


def test_unknown_stage_is_named_with_known_stages():
    (p,) = problems(cfg(stages=[{"stage": "lenght_filter"}]))
    assert p.startswith("stages[0].stage: unknown stage 'lenght_filter'")
    assert "did you mean 'length_filter'" in p


def test_stage_options_validated_by_the_stage_model():
    ps = problems(cfg(stages=[{"stage": "length_filter", "min_words": -1, "colour": "red"}]))
    assert any(p.startswith("stages[0].min_words:") for p in ps)
    assert any(p.startswith("stages[0].colour: unknown key") and "min_chars" in p for p in ps)


def test_stage_cross_field_check():
    (p,) = problems(cfg(stages=[{"stage": "length_filter", "min_chars": 10, "max_chars": 5}]))
    assert "max_chars (5) is below min_chars (10)" in p


def test_stage_entry_without_stage_key():
    (p,) = problems(cfg(stages=[{"min_words": 3}]))
    assert p.startswith("stages[0]: each stage needs a 'stage: NAME' key")


def test_duplicate_labels_refused():
    (p,) = problems(cfg(stages=[{"stage": "length_filter"}, {"stage": "length_filter"}]))
    assert "stages[1].label" in p


def test_resources_validated():
    (p,) = problems(cfg(stages=[{"stage": "length_filter", "resources": {"gpus": 1}}]))
    assert p.startswith("stages[0].resources.gpus: unknown key") and "gpus_per_task" in p


def test_env_interpolation_with_default_and_missing(monkeypatch):
    monkeypatch.setenv("CURATE_T_OUT", "/tmp/somewhere")
    c = parse_config(cfg(output={"path": "${CURATE_T_OUT}/run"}))
    assert c.output.path == "/tmp/somewhere/run"
    c = parse_config(cfg(output={"path": "${CURATE_T_NOPE:-fallback}/run"}))
    assert c.output.path == "fallback/run"
    (p,) = problems(cfg(output={"path": "${CURATE_T_NOPE}/run"}))
    assert p.startswith("output.path: environment variable ${CURATE_T_NOPE} is not set")


def test_load_config_errors_and_overrides(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text(
        textwrap.dedent("""
        input: {format: jsonl, path: data/sample}
        output: {path: out/x}
    """)
    )
    c = load_config(good, {"executor.tasks": 7, "executor.slurm.partition": "big"})
    assert c.executor.tasks == 7 and c.executor.slurm.partition == "big"


@pytest.mark.parametrize("name", ["sample.yaml", "fineweb.yaml", "refiner_label.yaml"])
def test_shipped_configs_validate(repo_root: Path, name: str):
    c = load_config(repo_root / "configs" / name)
    assert c.entries, "shipped configs run real stages"


def test_every_shipped_config_is_checked() -> None:
    shipped = {p.name for p in (REPO / "configs").glob("*.yaml")}
    assert shipped == {"sample.yaml", "fineweb.yaml", "refiner_label.yaml"}, "add the new config to the test above"


def test_refiner_label_config_passes_preflight(repo_root: Path) -> None:
    from curate.pipeline.preflight import preflight

    c = load_config(repo_root / "configs" / "refiner_label.yaml")
    assert Path(c.input.path).is_file()  # resolved against configs/: the bundled DCLM labels
    preflight(c, download=False)


def test_cli_validate_reports_errors_without_traceback(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {format: csv, path: x}\noutput: {path: y}\nexecutor: {tasks: -3}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: invalid config {bad}:")
    assert "input.format" in err and "'csv'" in err and "executor.tasks" in err
    assert "Traceback" not in err


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    # the command list itself, not the examples in the epilog (which name run, plan and stages too)
    commands = out.split("positional arguments:", 1)[1].split("options:", 1)[0]
    for cmd in ("run", "plan", "validate", "stats", "stages", "clean", "diff", "report"):
        assert re.search(rf"^\s+{cmd}\s+\w", commands, flags=re.M), cmd


def test_cli_stages_lists_every_stage_with_options_defaults_and_columns(capsys) -> None:
    from curate.core.stage_api import all_stages
    from curate.pipeline.cli import main

    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())  # long cells wrap inside their column
    for spec in all_stages():
        assert spec.name in out
        for fname in spec.options.model_fields:
            assert fname in out
    # defaults read as YAML would be written in a config, lines are not folded into fragments
    assert "shard_bytes" in out and "(default: 200000000)" in out and "(default: unset)" in out
    assert "{name: dclm, path: mlfoundations/fasttext-oh-eli5" in flat and "FastTextModelSpec(" not in flat
    assert "→ esd_removed_spans" in out and "\n...\n" not in out
    assert main(["stages", "minhash"]) == 2
    assert "did you mean 'minhash_dedup'" in capsys.readouterr().err
