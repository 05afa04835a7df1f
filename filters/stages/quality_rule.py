"""quality_rule: keep the documents for which a rule over annotation columns holds.

The rule language (parser, evaluator) is `filters/rule.py`; the `gneissweb` preset's clauses,
thresholds and keep expression are `filters/gneissweb_recipe.py`. A drop's reason is the clause
that failed.
"""

from __future__ import annotations

from typing import Literal

from datatrove.data import Document
from pydantic import Field, model_validator

from curate.core.stage_api import (
    ConfigError,
    CurateFilter,
    CurateStep,
    PreflightContext,
    StrictModel,
    register_prepare,
    register_stage,
)

from ..gneissweb_recipe import build_rule
from ..rule import Rule


def compile_rule(keep: str | None, clauses: dict[str, str], params: dict, preset: str | None) -> Rule:
    """Compile a rule inside an option validator: pydantic reports a ValueError under the stage's key."""
    try:
        return build_rule(keep, clauses, params, preset, "")
    except ConfigError as e:
        raise ValueError("; ".join(e.problems)) from None


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

    _rule: Rule | None = None

    @model_validator(mode="after")
    def _compile(self) -> RuleOptions:
        self._rule = compile_rule(self.keep, self.clauses, self.params, self.preset)
        return self

    @property
    def rule(self) -> Rule:
        assert self._rule is not None
        return self._rule


@register_stage(
    "quality_rule",
    RuleOptions,
    "keep documents for which a rule over annotation columns holds; drops name the failed clause",
    group="filter",
)
class RuleFilter(CurateFilter):
    """Keeps documents for which the rule holds; a drop's reason is the clause that failed."""

    name = "quality rule"

    def __init__(self, opts: RuleOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.rule = opts.rule

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        keep, failed = self.rule.evaluate(doc.metadata)
        if keep:
            return True
        count_failed_clauses(self, failed or "")
        return False, failed or "rule"


@register_prepare("quality_rule")
def prepare_rule(opts: RuleOptions, pf: PreflightContext) -> None:
    pf.check_names(opts.rule.columns, f"{pf.key}.keep")
