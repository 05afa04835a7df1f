"""Find the numeric thresholds a run's config applies to annotation columns, for the report's histograms.

Rules are written as expressions (`ft_dclm > dclm_min or ft_cosmo > 0.03`,
`0.1 <= tokens_per_char <= 0.5`), with constants inline or named in `params`. We tokenize every
string of every stage's options, and look at each comparison operator's neighbours: a column on
one side and a number (or a param naming one) on the other is a threshold. Chains yield one per
operator. Presets keep their rules in code, not in the config, so we also build the plan (no
data is read) and walk the built steps' attributes for the same strings and params.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

_TOKEN = re.compile(r"(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<op><=|>=|==|!=|<|>)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>\S)")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Threshold:
    column: str
    op: str  # as read "COLUMN OP value"
    value: float
    stage: str
    source: str  # the expression it came from (shortened)


def _walk(obj: Any, strings: list[str], params: dict[str, float], depth: int = 0, seen: set[int] | None = None) -> None:
    seen = seen if seen is not None else set()
    if depth > 6 or id(obj) in seen:
        return
    if isinstance(obj, str):
        if len(obj) < 20_000:
            strings.append(obj)
        return
    if isinstance(obj, (int, float, bool)) or obj is None:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                params.setdefault(k, float(v))
            _walk(v, strings, params, depth + 1, seen)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            _walk(v, strings, params, depth + 1, seen)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("curate."):
        _walk(vars(obj), strings, params, depth + 1, seen)


def _resolve(name: str, columns: set[str]) -> str | None:
    if name in columns:
        return name
    cands = [c for c in columns if c.endswith("_" + name)]
    return cands[0] if len(cands) == 1 else None


def parse_thresholds(text: str, columns: Iterable[str], params: dict[str, float], stage: str) -> list[Threshold]:
    cols = set(columns)
    toks = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    out: list[Threshold] = []
    short = text if len(text) <= 90 else text[:87] + "…"

    def number(tok: tuple[str | None, str]) -> float | None:
        kind, val = tok
        if kind == "num":
            return float(val)
        if kind == "name" and val in params and val not in cols:
            return params[val]
        return None

    for i, (kind, val) in enumerate(toks):
        if kind != "op" or i == 0 or i + 1 >= len(toks):
            continue
        left, right = toks[i - 1], toks[i + 1]
        if left[0] == "name" and (col := _resolve(left[1], cols)) and (n := number(right)) is not None:
            out.append(Threshold(col, val, n, stage, short))
        elif right[0] == "name" and (col := _resolve(right[1], cols)) and (n := number(left)) is not None:
            out.append(Threshold(col, _FLIP[val], n, stage, short))
    return out


def run_thresholds(run: dict[str, Any], columns: Iterable[str]) -> list[Threshold]:
    """Thresholds on `columns` found in `_curate_run.json`'s stages (and in the steps they build)."""
    decisive = run.get("decisive") or {}
    stages = decisive.get("stages") or []
    cols = list(columns)
    found: dict[tuple[str, str, float], Threshold] = {}
    built = _built_steps(decisive)
    for k, entry in enumerate(stages):
        if not isinstance(entry, dict):
            continue
        label = str(entry.get("label") or entry.get("stage") or f"stage {k}")
        strings: list[str] = []
        params: dict[str, float] = {}
        _walk({key: v for key, v in entry.items() if key not in ("stage", "label", "resources")}, strings, params)
        for step in built.get(label, []):
            _walk(step, strings, params)
        for s in strings:
            for t in parse_thresholds(s, cols, params, label):
                found.setdefault((t.column, t.op, t.value), t)
    return list(found.values())


def _built_steps(decisive: dict[str, Any]) -> dict[str, list[Any]]:
    """The steps each stage builds (by label); {} when the config cannot be built here."""
    try:
        from .config import parse_config
        from .plan import build_plan

        cfg = parse_config({"name": "report", "input": decisive["input"], "output": decisive["output"],
                            "stages": decisive["stages"], "executor": {"kind": "local", "tasks": 1}})
        plan = build_plan(cfg, check_inputs=False)
    except Exception:  # noqa: BLE001 - a stage we cannot build here (missing model...) only loses its defaults
        return {}
    out: dict[str, list[Any]] = {}
    for job in plan.jobs:
        for step in job.steps:
            out.setdefault(str(getattr(step, "label", None) or step.name), []).append(step)
    return out
