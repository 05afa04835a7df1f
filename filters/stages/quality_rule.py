"""quality_rule: keep the documents for which a rule over annotation columns holds.

The rule language (parser, evaluator) is `filters/rule.py`; the `gneissweb` preset's clauses,
thresholds and keep expression are `filters/gneissweb_recipe.py`. A drop's reason is the clause
that failed. A rule with `quantile(q)` thresholds ends the job before itself: two side jobs compute
the quantiles over the documents handed to it (`filters/quantiles.py`), then the rule applies them.
"""

from __future__ import annotations

from typing import Literal

from datatrove.data import Document
from loguru import logger
from pydantic import Field, model_validator

from curate.core.frozen import FROZEN_FILE
from curate.core.stage_api import (
    BuildContext,
    ConfigError,
    CurateFilter,
    CurateStep,
    PreflightContext,
    StrictModel,
    register_prepare,
    register_stage,
)

from ..gneissweb_recipe import build_rule
from ..quantiles import FOLDER, QuantileMerge, QuantileSample, read_values
from ..rule import Rule


def compile_rule(
    keep: str | None, clauses: dict[str, str], params: dict, preset: str | None, quantiles: bool = False
) -> Rule:
    """Compile a rule inside an option validator: pydantic reports a ValueError under the stage's key.
    `quantiles`: whether the stage computes quantile(q) thresholds (only quality_rule does)."""
    try:
        rule = build_rule(keep, clauses, params, preset, "")
    except ConfigError as e:
        raise ValueError("; ".join(e.problems)) from None
    if rule.quantiles and not quantiles:
        raise ValueError(
            f"{', '.join(sorted(rule.quantiles))}: a quantile threshold needs every document's value before the "
            "rule runs; write the rule in a quality_rule stage after this one"
        )
    return rule


def count_failed_clauses(step: CurateStep | CurateFilter, failed: str) -> None:
    # "READ,EXT" drops count once under that reason and once under each clause here
    for clause in failed.split(","):
        step.stat_update(f"failed_clause/{clause}")


class RuleOptions(StrictModel):
    preset: Literal["gneissweb"] | None = Field(
        None, description="gneissweb: start from GneissWeb's clauses, thresholds and keep rule"
    )
    keep: str | None = Field(
        None, description="the keep expression (e.g. 'FT and (READ or EXT)'); grammar: docs/stages/quality.md"
    )
    clauses: dict[str, str] = Field(
        default_factory=dict, description="named sub-expressions; a drop names the one that failed"
    )
    params: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="named constants (thresholds)"
    )
    quantile_sample: int = Field(
        1_000_000,
        ge=1,
        description="quantile(q) thresholds: values kept per task and column to compute them (exact while no "
        "task sees more)",
    )

    _rule: Rule | None = None

    @model_validator(mode="after")
    def _compile(self) -> RuleOptions:
        self._rule = compile_rule(self.keep, self.clauses, self.params, self.preset, quantiles=True)
        return self

    @property
    def rule(self) -> Rule:
        assert self._rule is not None
        return self._rule


class RuleFilter(CurateFilter):
    """Keeps documents for which the rule holds; a drop's reason is the clause that failed. `quantiles`: the
    folder whose quantiles.json holds the rule's quantile(q) values (read once, when the task starts)."""

    name = "quality rule"

    def __init__(self, opts: RuleOptions, label: str | None = None, quantiles: str | None = None) -> None:
        super().__init__(label)
        self.rule = opts.rule
        self.quantiles = quantiles
        self._resolved = not (quantiles and self.rule.quantiles)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not self._resolved:
            assert self.quantiles is not None  # unresolved only when there is a folder to read
            values = read_values(self.quantiles)
            logger.info(f"{self.label or self.name}: " + ", ".join(f"{k} = {v:.6g}" for k, v in values.items()))
            self.rule, self._resolved = self.rule.with_quantiles(values), True
        keep, failed = self.rule.evaluate(doc.metadata)
        if keep:
            return True
        count_failed_clauses(self, failed or "")
        return False, failed or "rule"


@register_stage(
    "quality_rule",
    RuleOptions,
    "keep documents for which a rule over annotation columns holds; drops name the failed clause",
)
def build_quality_rule(opts: RuleOptions, ctx: BuildContext) -> None:
    if not opts.rule.quantiles:
        ctx.add(RuleFilter(opts))
        return
    label = ctx.stage_label
    docs = ctx.barrier(label)
    samples, values = ctx.work_path(label, "quantile_samples"), ctx.work_path(label, FOLDER)
    columns = sorted({c for c, _ in opts.rule.quantiles.values()})
    sample = QuantileSample(columns, samples, opts.quantile_sample)
    ctx.add_job(f"{label}_quantile_sample", [ctx.handoff_reader(docs), sample], tasks=ctx.tasks, writes=[samples])
    ctx.add_job(
        f"{label}_quantiles",
        [QuantileMerge(samples, values, opts.rule.quantiles, ctx.work_path(label, FROZEN_FILE))],
        tasks=1,
        writes=[values],
    )
    ctx.add(RuleFilter(opts, quantiles=values))


@register_prepare("quality_rule")
def prepare_rule(opts: RuleOptions, pf: PreflightContext) -> None:
    pf.check_names(opts.rule.columns, f"{pf.key}.keep")
