"""Score refiners on held-out SFT rows with ProX's metrics, several models side by side.

* Doc stage: F1 with `drop` as the positive class. A prediction drops when `prox_refine` would drop:
  a valid `drop_doc()` first (refiners/apply.py `doc_decision`); anything else keeps.
* Chunk stage: line-removal F1 over lines. Gold = lines the target removes; predicted = lines the
  prediction removes inside the chunk, and none when `prox_refine` would ignore the program
  (`max_errors` rejected lines or more), exactly what `prox_refine` would do with it.
* Normalizations: exact match of the (source, target) multiset per chunk, over the chunks where the
  gold or the prediction has any.
* Valid share: predictions whose every line parses (doc stage: and which decide).
* Exact program: prediction == target, character for character (after ProX's `.strip(" ")`).

Models: `NAME=BACKEND:PATH` (a backend that loads a model: vllm | transformers), `BACKEND:PATH`, or
the name of a backend without a model (`boilerplate`). Prompt token ids are rebuilt with each model's
own tokenizer (BOS once) or, for another vocabulary, through its chat template, as `prox_refine` does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError

from . import chat
from .apply import DEFAULT_LIMITS, doc_decision
from .backends.base import all_backends, get_backend
from .program import CHUNK_CALLS, DOC_CALLS, parse_program
from .prompts import Prompt


@dataclass
class ModelSpec:
    name: str
    backend: str
    path: str | None = None


def parse_model(spec: str) -> ModelSpec:
    name, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    backends = all_backends()
    without = [b.name for b in backends if not b.needs_model]
    with_model = [b.name for b in backends if b.needs_model]
    expected = f"expected NAME=BACKEND:PATH (backend {' | '.join(with_model)}) or {' | '.join(without)}"
    if rest in without:
        return ModelSpec(name or rest, rest)
    if rest == "rules":
        raise ConfigError(
            f"--model {spec!r}: the rules backend is now called boilerplate "
            f"(did you mean '{spec[: len(spec) - len(rest)]}boilerplate'?)"
        )
    backend, sep, path = rest.partition(":")
    if not sep or backend not in with_model or not path:
        raise ConfigError(f"--model {spec!r}: {expected}")
    if not Path(path).is_dir():
        raise ConfigError(f"--model {spec!r}: {path} is not a model folder")
    return ModelSpec(name or Path(path).name, backend, path)


def prompts_for(rows: Sequence[dict], model: str | None) -> list[Prompt]:
    texts = [r["prompt"] for r in rows]
    ids: list[list[int]] = [[] for _ in rows]
    if model is not None:
        try:
            ids = chat.ids_for_model(model, texts)
        except ValueError as e:
            raise ConfigError(f"--model {model}: {e}") from None
    return [
        Prompt(r["stage"], t, i, first_line=r["first_line"], last_line=r["last_line"])
        for r, t, i in zip(rows, texts, ids)
    ]


def predict(
    spec: ModelSpec, rows: Sequence[dict], doc_max_tokens: int = 16, chunk_max_tokens: int = 256, **backend_options: Any
) -> list[str]:
    """Greedy answers of a model to each row's prompt (doc and chunk rows may be mixed). `backend_options`
    serve several models at once: those the model's backend does not have are left out for it."""
    b = get_backend(spec.backend)
    backend = b.create(
        spec.path, b.options.model_validate({k: v for k, v in backend_options.items() if k in b.options.model_fields})
    )
    prompts = prompts_for(rows, spec.path)
    out: list[str] = [""] * len(rows)
    for stage, n in (("doc", doc_max_tokens), ("chunk", chunk_max_tokens)):
        idx = [i for i, r in enumerate(rows) if r["stage"] == stage]
        for i, g in zip(idx, backend.generate([prompts[i] for i in idx], n)):
            out[i] = g.text
    return out


def _f1(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"precision": p, "recall": r, "f1": f}


def _removed(calls: Sequence[Any], first: int, last: int) -> set[int]:
    return {
        i
        for c in calls
        if c.name == "remove_lines"
        for i in range(max(first, c.arg("line_start")), min(last, c.arg("line_end")) + 1)
    }


def _norms(calls: Sequence[Any]) -> Counter:
    return Counter((c.arg("source_str"), c.arg("target_str")) for c in calls if c.name == "normalize")


def score(
    rows: Sequence[dict], predictions: Sequence[str], max_errors: int = DEFAULT_LIMITS.max_errors
) -> dict[str, Any]:
    """ProX metrics of `predictions` against the rows' targets."""
    doc: Counter[str] = Counter()
    line: Counter[str] = Counter()
    norm_total = norm_match = 0
    for r, pred in zip(rows, predictions):
        pred = (pred or "").strip(" ")
        st = r["stage"]
        c = doc if st == "doc" else line
        c["n"] += 1
        c["exact"] += pred == r["target"]
        if st == "doc":
            prog = parse_program(pred, DOC_CALLS)
            c["valid"] += (
                not prog.errors and not prog.fatal and any(x.name in ("drop_doc", "keep_doc") for x in prog.calls)
            )
            gold = r["target"] == "drop_doc()"
            drop = doc_decision(prog)[0]
            c["tp" if gold and drop else "fp" if drop else "fn" if gold else "tn"] += 1
            continue
        gold_calls = parse_program(r["target"], CHUNK_CALLS).calls
        prog = parse_program(pred, CHUNK_CALLS)
        c["valid"] += not prog.errors and not prog.fatal
        calls = [] if prog.fatal or len(prog.errors) >= max_errors else prog.calls
        g = _removed(gold_calls, r["first_line"], r["last_line"])
        p = _removed(calls, r["first_line"], r["last_line"])
        c["tp"] += len(g & p)
        c["fp"] += len(p - g)
        c["fn"] += len(g - p)
        gn, pn = _norms(gold_calls), _norms(calls)
        if gn or pn:
            norm_total += 1
            norm_match += gn == pn
    out: dict[str, Any] = {}
    if doc["n"]:
        acc = (doc["tp"] + doc["tn"]) / doc["n"]
        out["doc"] = {
            "n": doc["n"],
            "valid_share": doc["valid"] / doc["n"],
            "exact": doc["exact"] / doc["n"],
            "accuracy": acc,
            **_f1(doc["tp"], doc["fp"], doc["fn"]),
            "counts": {k: doc[k] for k in ("tp", "fp", "fn", "tn")},
        }
    if line["n"]:
        out["chunk"] = {
            "n": line["n"],
            "valid_share": line["valid"] / line["n"],
            "exact": line["exact"] / line["n"],
            **{f"line_{k}": v for k, v in _f1(line["tp"], line["fp"], line["fn"]).items()},
            "normalize_exact_match": norm_match / norm_total if norm_total else None,
            "normalize_chunks": norm_total,
            "counts": {k: line[k] for k in ("tp", "fp", "fn")},
        }
    return out


def evaluate(
    rows: Sequence[dict], specs: Sequence[ModelSpec], max_errors: int = DEFAULT_LIMITS.max_errors, **options: Any
) -> dict[str, Any]:
    """{model name: metrics (+ generation seconds)} for each model on the same rows."""
    results: dict[str, Any] = {}
    for spec in specs:
        t = time.time()
        preds = predict(spec, rows, **options)
        results[spec.name] = {
            **score(rows, preds, max_errors),
            "generate_s": round(time.time() - t, 2),
            "model": spec.path,
            "backend": spec.backend,
        }
    return results


ROWS = [
    ("doc", "n", "doc prompts"),
    ("doc", "f1", "doc F1 (drop = positive)"),
    ("doc", "precision", "doc precision"),
    ("doc", "recall", "doc recall"),
    ("doc", "accuracy", "doc accuracy"),
    ("doc", "valid_share", "doc valid programs"),
    ("chunk", "n", "chunk prompts"),
    ("chunk", "line_f1", "chunk line-removal F1"),
    ("chunk", "line_precision", "line precision"),
    ("chunk", "line_recall", "line recall"),
    ("chunk", "normalize_exact_match", "normalize exact match"),
    ("chunk", "valid_share", "chunk valid programs"),
    ("chunk", "exact", "chunk exact program"),
]


def table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title="refiner evaluation (held-out)", title_justify="left")
    t.add_column("metric")
    for name in results:
        t.add_column(name, justify="right")
    for stage, key, label in ROWS:
        if not any(stage in r for r in results.values()):
            continue
        cells = []
        for r in results.values():
            v = r.get(stage, {}).get(key)
            cells.append("-" if v is None else str(v) if isinstance(v, int) else f"{v:.3f}")
        t.add_row(label, *cells)
    return t
