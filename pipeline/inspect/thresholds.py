"""The numeric thresholds a run's rules apply to annotation columns, for the report's histograms.

A rule is parsed once, by the rule language itself (`curate.filters.rule`): we read the run's
stage entries from `_curate_run.json`, validate each with its stage's own options model (so a
preset such as GneissWeb's brings its clauses and params, exactly as the run compiled them) and
walk the trees of every stage whose options carry a `Rule`. Each comparison between a column and
a number (or a param naming one) is a threshold; a chain (`0.1 <= tokens_per_char <= 0.5`)
yields one per operator.

A threshold also records its guard: the bare conditions AND-ed with it on the way from the
expression's root, e.g. `CAT` in `(CAT and eflaw < 70) or (NCAT and eflaw < 30)`. GneissWeb's
rule has two sets of readability and tokenization thresholds, one for category documents and
one for the others; without the guard the report would draw four unnamed lines on
tokens_per_char.

A `quantile(q)` threshold is drawn at the value the run computed, frozen in `_curate_run.json`
(`core/frozen.py`).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from curate.filters.rule import Node, Rule

from ..layout import INTERMEDIATE

_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_NOT_OPTIONS = ("stage", "label", "resources")  # keys of a stage entry that are not its options


@dataclass(frozen=True)
class Threshold:
    column: str
    op: str  # as read "COLUMN OP value"
    value: float
    stage: str
    source: str  # the expression it came from (shortened)
    when: str = ""  # the guard AND-ed with it ("CAT", "not is_category"), "" when it applies to every document
    when_means: str = ""  # what the guard is when it names a clause ("CAT = is_category")

    @property
    def label(self) -> str:
        return f"{self.when} {self.op} {self.value:g}" if self.when else f"{self.op} {self.value:g}"


def _resolve(name: str, columns: set[str]) -> str | None:
    """The output column a rule's name reads: itself, or the one column ending in `_name` (`dclm` is `ft_dclm`)."""
    if name in columns:
        return name
    cands = [c for c in columns if c.endswith("_" + name)]
    return cands[0] if len(cands) == 1 else None


def _number(rule: Rule, node: Node) -> float | None:
    """A numeric literal, or a param naming a number (as the rule resolves names: params before columns)."""
    if node.kind == "num":
        return float(node.value)
    if node.kind == "quantile":
        got = rule.quantile_values.get(rule.quantile_of(node))
        return float(got) if got is not None else None
    if node.kind == "name" and node.value not in rule.trees and node.value in rule.params:
        v = rule.params[node.value]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def _column(rule: Rule, node: Node, cols: set[str]) -> str | None:
    if node.kind != "name" or node.value in rule.trees or node.value in rule.params:
        return None
    return _resolve(node.value, cols)


def _guard_of(rule: Rule, node: Node, cols: set[str]) -> str | None:
    """`node` as a guard when it is a bare condition: a clause or a boolean column, or `not` of one."""
    neg = node.kind == "not" and node.children[0].kind == "name"
    n = node.children[0] if neg else node
    if n.kind != "name" or n.value in rule.params or _column(rule, n, cols):
        return None  # params and float columns are operands, not conditions
    return ("not " if neg else "") + n.value


def tree_thresholds(rule: Rule, tree: Node, src: str, columns: Iterable[str], stage: str) -> list[Threshold]:
    """Thresholds on `columns` in one parsed expression of `rule` (its keep tree or one clause's)."""
    cols = set(columns)
    short = " ".join(src.split())
    short = short if len(short) <= 300 else short[:297] + "…"
    out: list[Threshold] = []

    def visit(node: Node, guards: tuple[str, ...]) -> None:
        if node.kind == "and":
            # the bare conditions of this `and` guard every comparison under its other operands
            mine = {id(c): g for c in node.children if (g := _guard_of(rule, c, cols))}
            for c in node.children:
                visit(c, guards + tuple(g for k, g in mine.items() if k != id(c)))
            return
        if node.kind == "cmp":
            for op, a, b in zip(node.value, node.children, node.children[1:]):
                if (col := _column(rule, a, cols)) and (n := _number(rule, b)) is not None:
                    out.append(_threshold(rule, col, op, n, stage, short, guards, cols))
                elif (col := _column(rule, b, cols)) and (n := _number(rule, a)) is not None:
                    out.append(_threshold(rule, col, _FLIP[op], n, stage, short, guards, cols))
        for c in node.children:
            visit(c, guards)

    visit(tree, ())
    return out


def _threshold(
    rule: Rule, col: str, op: str, value: float, stage: str, src: str, guards: tuple[str, ...], cols: set[str]
) -> Threshold:
    when = " and ".join(dict.fromkeys(guards))
    defs = rule.clause_src
    means = "; ".join(
        f"{g} = {' '.join(defs[g].split())}"
        for g in (x.removeprefix("not ") for x in dict.fromkeys(guards))
        if g in defs and defs[g] != g and defs[g] not in cols
    )
    return Threshold(col, op, value, stage, src, when, means)


def rule_thresholds(rule: Rule, columns: Iterable[str], stage: str) -> list[Threshold]:
    """Thresholds on `columns` in every expression of `rule`: its keep expression and its clauses."""
    cols = list(columns)
    out = tree_thresholds(rule, rule.keep_tree, rule.keep_src, cols, stage)
    for name, tree in rule.trees.items():
        out += tree_thresholds(rule, tree, rule.clause_src[name], cols, stage)
    return out


def stage_rule(entry: dict[str, Any]) -> Rule | None:
    """The rule a stage entry of `_curate_run.json` compiles to, built by the stage's own options
    model; None for a stage without a rule. Raises what the registry or the options model raise."""
    from curate.core.stage_api import get_stage

    spec = get_stage(str(entry["stage"]))
    opts = spec.options.model_validate({k: v for k, v in entry.items() if k not in _NOT_OPTIONS})
    rule = getattr(opts, "rule", None)
    return rule if isinstance(rule, Rule) else None


def _with_quantiles(rule: Rule, run: dict[str, Any], label: str) -> Rule:
    """The rule with the quantile values its run computed: frozen in `_curate_run.json`, else (a run record
    of before the freeze) in the run's work folder while it is there."""
    if not rule.quantiles:
        return rule
    if (run.get("frozen") or {}).get(label):
        return rule.with_quantiles(run["frozen"][label])
    if not run.get("work_dir"):
        return rule
    from curate.filters.quantiles import FOLDER, read_values

    try:
        return rule.with_quantiles(read_values(posixpath.join(str(run["work_dir"]), INTERMEDIATE, label, FOLDER)))
    except (OSError, ValueError):
        return rule


def run_thresholds(run: dict[str, Any], columns: Iterable[str], problems: list[str] | None = None) -> list[Threshold]:
    """Thresholds on `columns` of the rules in `_curate_run.json`'s stages, one per (column, op,
    value, guard). A stage whose entry cannot be read here (a plugin stage not installed, options
    of another curate version) adds one line to `problems` and its thresholds are not drawn."""
    stages = (run.get("decisive") or {}).get("stages") or []
    cols = list(columns)
    found: dict[tuple[str, str, float, str], Threshold] = {}
    for k, entry in enumerate(stages):
        if not isinstance(entry, dict) or "stage" not in entry:
            continue
        label = str(entry.get("label") or entry["stage"] or f"stage {k}")
        try:
            rule = stage_rule(entry)
        except Exception as e:  # noqa: BLE001 - one stage we cannot read must not cost the whole report
            if problems is not None:
                problems.append(
                    f"{label}: thresholds not shown: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                )
            continue
        if rule is None:
            continue
        rule = _with_quantiles(rule, run, label)
        for t in rule_thresholds(rule, cols, label):
            found.setdefault((t.column, t.op, t.value, t.when), t)
    return list(found.values())
