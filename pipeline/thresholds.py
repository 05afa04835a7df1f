"""Find the numeric thresholds a run's config applies to annotation columns, for the report's histograms.

Rules are written as expressions (`ft_dclm > dclm_min or ft_cosmo > 0.03`,
`0.1 <= tokens_per_char <= 0.5`), with constants inline or named in `params`. We tokenize every
string of every stage's options, and look at each comparison operator's neighbours: a column on
one side and a number (or a param naming one) on the other is a threshold. Chains yield one per
operator. Presets keep their rules in code, not in the config, so we also build the plan (no
data is read) and walk the built steps' attributes for the same strings and params.

A threshold also records its guard: the other conditions AND-ed with it, e.g. `CAT` in
`(CAT and eflaw < 70) or (NCAT and eflaw < 30)`. GneissWeb's rule has two sets of readability and
tokenization thresholds, one for category documents and one for the others; without the guard
the report would draw four unnamed lines on tokens_per_char.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

_TOKEN = re.compile(r"(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<op><=|>=|==|!=|<|>)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>\S)")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_KEYWORDS = {"and", "or", "not", "true", "false"}


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


def _walk(obj: Any, strings: list[str], params: dict[str, float], depth: int = 0, seen: set[int] | None = None,
          defs: dict[str, str] | None = None) -> None:
    """Every string (candidate expression), numeric entry (candidate param) and name -> string entry
    (candidate clause definition, e.g. CAT -> is_category) under `obj`."""
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
            if defs is not None and isinstance(k, str) and isinstance(v, str) and k.isidentifier() and len(v) < 200:
                defs.setdefault(k, v)
            _walk(v, strings, params, depth + 1, seen, defs)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            _walk(v, strings, params, depth + 1, seen, defs)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("curate."):
        _walk(vars(obj), strings, params, depth + 1, seen, defs)


def _resolve(name: str, columns: set[str]) -> str | None:
    if name in columns:
        return name
    cands = [c for c in columns if c.endswith("_" + name)]
    return cands[0] if len(cands) == 1 else None


def _guard(toks: list[tuple[str | None, str]], i: int, cols: set[str], params: dict[str, float]) -> str:
    """The bare conditions AND-ed with the comparison at token `i`, at its own nesting level and every
    level around it: `CAT` for `(CAT and eflaw < 70) or ...`, `not is_category` for `not is_category and
    x < 3`. Operands of comparisons, columns and params are not guards."""
    found: list[str] = []
    lo = hi = i
    while True:
        # the enclosing group: walk out to the unmatched "(" on the left and ")" on the right
        depth, a = 0, lo - 1
        while a >= 0 and not (toks[a][1] == "(" and depth == 0):
            depth += {")": 1, "(": -1}.get(toks[a][1], 0)
            a -= 1
        depth, b = 0, hi + 1
        while b < len(toks) and not (toks[b][1] == ")" and depth == 0):
            depth += {"(": 1, ")": -1}.get(toks[b][1], 0)
            b += 1
        # within it, the `or`-separated part holding the comparison; its names at this level are guards
        depth, start, parts = 0, a + 1, []
        for k in range(a + 1, b):
            depth += {"(": 1, ")": -1}.get(toks[k][1], 0)
            if depth == 0 and toks[k][1].lower() == "or":
                parts.append((start, k))
                start = k + 1
        parts.append((start, b))
        s, e = next((s, e) for s, e in parts if s <= i < e)
        depth = 0
        for k in range(s, e):
            kind, val = toks[k]
            depth += {"(": 1, ")": -1}.get(val, 0)
            if depth or kind != "name" or val.lower() in _KEYWORDS or _resolve(val, cols) or val in params:
                continue
            if (k > 0 and toks[k - 1][0] == "op") or (k + 1 < len(toks) and toks[k + 1][0] == "op"):
                continue  # an operand of a comparison, not a condition of its own
            neg = k > 0 and toks[k - 1][1].lower() == "not"
            found.append(("not " if neg else "") + val)
        if a < 0:
            return " and ".join(dict.fromkeys(reversed(found)))
        lo, hi = a, b


def parse_thresholds(text: str, columns: Iterable[str], params: dict[str, float], stage: str,
                     defs: dict[str, str] | None = None) -> list[Threshold]:
    cols = set(columns)
    toks = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    defs = defs or {}
    out: list[Threshold] = []
    short = text if len(text) <= 300 else text[:297] + "…"

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
            op = val
        elif right[0] == "name" and (col := _resolve(right[1], cols)) and (n := number(left)) is not None:
            op = _FLIP[val]
        else:
            continue
        when = _guard(toks, i, cols, params)
        means = "; ".join(f"{g} = {defs[g]}" for g in when.replace("not ", "").split(" and ")
                          if g in defs and defs[g] != g and defs[g] not in cols)
        out.append(Threshold(col, op, n, stage, short, when, means))
    return out


def run_thresholds(run: dict[str, Any], columns: Iterable[str]) -> list[Threshold]:
    """Thresholds on `columns` found in `_curate_run.json`'s stages (and in the steps they build)."""
    decisive = run.get("decisive") or {}
    stages = decisive.get("stages") or []
    cols = list(columns)
    found: dict[tuple[str, str, float, str], Threshold] = {}
    built = _built_steps(decisive)
    for k, entry in enumerate(stages):
        if not isinstance(entry, dict):
            continue
        label = str(entry.get("label") or entry.get("stage") or f"stage {k}")
        strings: list[str] = []
        params: dict[str, float] = {}
        defs: dict[str, str] = {}
        _walk({key: v for key, v in entry.items() if key not in ("stage", "label", "resources")}, strings, params, defs=defs)
        for step in built.get(label, []):
            _walk(step, strings, params, defs=defs)
        for s in strings:
            for t in parse_thresholds(s, cols, params, label, defs):
                found.setdefault((t.column, t.op, t.value, t.when), t)
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
