"""Thresholds as quantiles: `dclm >= quantile(0.9)` parsed (never computed by the parser), computed by the
run over the documents the rule sees (exact while the sample holds every value), then applied."""

from __future__ import annotations

import json
import pickle
import random
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from curate_testing import REPO
from datatrove.data import Document

from curate.core.errors import ConfigError
from curate.filters.quantiles import QuantileMerge, QuantileSample, merge_samples, read_values
from curate.filters.rule import Rule, RuleError, quantile_key
from curate.pipeline import load_config, run_config
from curate.pipeline.config import parse_config


def test_a_rule_names_its_quantiles_and_refuses_to_guess_them():
    r = Rule("FT and tpc < 0.5", clauses={"FT": "dclm >= quantile(0.9) or quantile(0.5) < cosmo"})
    assert r.quantiles == {"quantile(dclm, 0.9)": ("dclm", 0.9), "quantile(cosmo, 0.5)": ("cosmo", 0.5)}
    assert {"dclm", "cosmo", "tpc"} <= r.columns
    with pytest.raises(RuleError, match=r"quantile\(dclm, 0.9\) has not been computed"):
        r.evaluate({"dclm": 0.5, "cosmo": 0.1, "tpc": 0.1})
    done = pickle.loads(pickle.dumps(r.with_quantiles({quantile_key("dclm", 0.9): 0.4, "quantile(cosmo, 0.5)": 0.2})))
    assert done.evaluate({"dclm": 0.5, "cosmo": 0.0, "tpc": 0.1}) == (True, None)
    assert done.evaluate({"dclm": 0.3, "cosmo": 0.1, "tpc": 0.1}) == (False, "FT")
    assert done.evaluate({"dclm": 0.3, "cosmo": 0.3, "tpc": 0.1}) == (True, None)
    assert Rule("quantile < 3").columns == {"quantile"}  # a column of that name still works


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("quantile(0.9)", "expected a condition, found quantile"),
        ("x > quantile(1.5)", "q must be between 0 and 1"),
        ("x > quantile(a)", "a number between 0 and 1"),
        ("x > quantile(0.5", "')' to close quantile("),
        ("p < quantile(0.5)", "must be compared with a column"),
    ],
)
def test_malformed_quantiles(expr: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re_escape(expected)):
        Rule(expr, params={"p": 1})


def re_escape(s: str) -> str:
    import re

    return re.escape(s)


def test_only_quality_rule_computes_quantiles():
    base = {"input": {"format": "jsonl", "path": "x"}, "output": {"path": "y"}}
    cfg = parse_config({**base, "stages": [{"stage": "quality_rule", "keep": "eflaw <= quantile(0.5)"}]})
    assert cfg.entries[0].options.rule.quantiles
    with pytest.raises(ConfigError, match="write the rule in a quality_rule stage after this one"):
        parse_config(
            {
                **base,
                "stages": [
                    {
                        "stage": "gneissweb_ensemble",
                        "quality_models": [{"name": "dclm", "path": "m.bin"}],
                        "keep": "dclm >= quantile(0.9)",
                        "clauses": {},
                    }
                ],
            }
        )


def _sample(docs: list[Document], rank: int, folder: str, size: int) -> None:
    list(QuantileSample(["s"], folder, size).run(iter(docs), rank=rank, world_size=2))


def test_samples_merge_to_the_exact_quantile_and_to_an_estimate(tmp_path):
    rng = random.Random(1)
    values = [rng.gauss(0, 1) for _ in range(20_000)]
    docs = [Document(text="", id=str(i), metadata={"s": v}) for i, v in enumerate(values)]
    docs.append(Document(text="", id="x", metadata={"s": None}))  # no number: not counted
    wanted = {quantile_key("s", q): ("s", q) for q in (0.1, 0.5, 0.9)}
    for size, folder in ((20_000, tmp_path / "all"), (2_000, tmp_path / "some")):
        _sample(docs[:5000], 0, str(folder), size)
        _sample(docs[5000:], 1, str(folder), size)
        list(QuantileMerge(str(folder), str(folder / "v"), wanted).run())
        got = read_values(str(folder / "v"))
        for key, (_, q) in wanted.items():
            if size == 20_000:  # every value kept: numpy's own quantile
                assert got[key] == pytest.approx(float(np.quantile(values, q)), abs=0)
            else:  # weighted samples (the tasks saw 5,000 and 15,000): within a few percentile points
                assert abs(float(np.mean(np.asarray(values) <= got[key])) - q) < 0.03
    with pytest.raises(Exception, match="no document has a number in column 's'"):
        merge_samples([{"s": {"seen": 0, "values": []}}], {"quantile(s, 0.5)": ("s", 0.5)})


@pytest.mark.slow
def test_a_run_computes_the_quantile_over_every_document_and_keeps_that_share(tmp_path):
    cfg = {
        "name": "quantile",
        "input": {"format": "jsonl", "path": str(REPO / "data" / "sample"), "glob": "*.jsonl.gz", "id_key": "id"},
        "output": {"path": str(tmp_path / "out"), "keep_rejected": True},
        "executor": {"kind": "local", "tasks": 2, "workers": 2},
        "stages": [
            {"stage": "length_filter", "min_words": 5},
            {"stage": "readability"},
            {"stage": "quality_rule", "keep": "eflaw <= quantile(0.75)"},
        ],
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    stats = run_config(load_config(tmp_path / "cfg.yaml"), progress=False)
    assert stats["complete"] and stats["conserved"]
    kept = [v for f in (tmp_path / "out" / "data").glob("*.parquet") for v in pq.read_table(f)["eflaw"].to_pylist()]
    gone = [
        v
        for f in (tmp_path / "out" / "rejected" / "quality_rule").glob("*.parquet")
        for v in pq.read_table(f)["eflaw"].to_pylist()
    ]
    value = float(np.quantile(kept + gone, 0.75))
    frozen = read_values(str(tmp_path / "out.work" / "intermediate" / "quality_rule" / "quantiles"))
    assert frozen == {"quantile(eflaw, 0.75)": pytest.approx(value, abs=1e-12)}
    assert max(kept) <= value < min(gone)
    assert abs(len(kept) / (len(kept) + len(gone)) - 0.75) < 0.01
    # the report draws the computed value on eflaw's histogram
    from curate.pipeline.inspect.thresholds import run_thresholds

    # frozen into the run record and the dataset card; the report reads it there, work folder or not
    run = json.loads((tmp_path / "out" / "_curate_run.json").read_text())
    assert run["frozen"] == {"quality_rule": frozen}
    card = (tmp_path / "out" / "README.md").read_text()
    assert (
        "## Values computed by the run" in card and f"| quality_rule | `quantile(eflaw, 0.75)` | {value:.6g} |" in card
    )
    shutil.rmtree(tmp_path / "out.work")
    (t,) = run_thresholds(run, ["eflaw"])
    assert (t.column, t.op, t.value, t.source) == (
        "eflaw",
        "<=",
        frozen["quantile(eflaw, 0.75)"],
        "eflaw <= quantile(0.75)",
    )
