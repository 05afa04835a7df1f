"""Command-line edges a new user hits: --set into a stage, YAML errors naming the file, stage columns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from curate.pipeline import ConfigError, load_config
from curate.pipeline.cli import main


def _config(tmp_path: Path, sample_dir: Path) -> Path:
    c = {
        "input": {"format": "jsonl", "path": str(sample_dir)},
        "output": {"path": str(tmp_path / "o")},
        "stages": [
            {"stage": "length_filter", "min_words": 5},
            {"stage": "length_filter", "label": "long_only", "min_words": 50},
        ],
    }
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(c))
    return p


def test_set_reaches_a_stage_by_index_and_by_label(tmp_path: Path, sample_dir: Path, capsys) -> None:
    p = _config(tmp_path, sample_dir)
    assert load_config(p, {"stages.0.min_words": 10}).entries[0].options.min_words == 10
    assert load_config(p, {"stages.long_only.min_words": 70}).entries[1].options.min_words == 70
    assert load_config(p, {"stages.-1.max_chars": 9000}).entries[1].options.max_chars == 9000
    assert main(["validate", str(p), "--set", "stages.0.min_words=10"]) == 0
    with pytest.raises(ConfigError, match=r"--set stages.7: there are 2 entries \(0..1\)"):
        load_config(p, {"stages.7.min_words": 1})
    with pytest.raises(ConfigError, match="no single stage labelled 'nope'.*length_filter, long_only"):
        load_config(p, {"stages.nope.min_words": 1})
    assert main(["validate", str(p), "--set", "stages.0.min_wrods=10"]) == 2
    assert "stages[0].min_wrods: unknown key (did you mean 'min_words'?)" in capsys.readouterr().err


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("input:\n  format: jsonl\n  path: [unclosed\noutput: {path: o}\n")
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:" in err and "<unicode string>" not in err and "not valid YAML" in err
    assert len(err.strip().splitlines()) == 2


def test_stages_lists_the_columns_of_option_dependent_stages(capsys) -> None:
    assert main(["stages", "gneissweb_ensemble"]) == 0
    out = capsys.readouterr().out
    for col in ("ft_dclm", "ft_cosmo", "cat_medical", "is_category", "eflaw", "tokens_per_char"):
        assert f"→ {col}" in out, col
