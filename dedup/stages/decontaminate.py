"""decontaminate: find benchmark (eval set) word n-grams in the documents; drop, cut or annotate them.

Plan (`build_decontaminate`): a job of its own (one task) reads every eval set, normalizes and hashes
its word n-grams and writes the index to the run's work folder (`IndexEvalSets`); every task of the
main flow loads it once and searches its documents in batches (`Decontaminate`). The kernel
(normalization, hashes, exact and Bloom indexes, verification) is dedup/decontam.py.

A document is contaminated when at least `min_overlaps` of its n-grams are eval n-grams. `drop` drops
it (reason `contaminated/<eval set>`, the set with most hits); `cut` removes each matched n-gram with
`cut_margin` characters either side (GPT-3, appendix C: the 13-gram and a 200-character window; each
merged span is replaced by a line break and, with `record_edits`, recorded in the edits column with the
eval sets it matched, for `curate diff`) and drops the document when fewer than `min_chars_left`
non-space characters are left; `annotate` keeps
everything. Every mode records `decon_hits` and `decon_sets`; cut also the removed spans.

Each task writes what it found per eval set (documents and n-grams hit, the items hit, a few example
spans) to the work folder; `stats_report()` merges them into the stage's record in stats.json.
"""

from __future__ import annotations

import bisect
import functools
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from datatrove.data import Document
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, model_validator

from curate.core.stage_api import (
    BuildContext,
    Column,
    CurateStep,
    LocalPath,
    PreflightContext,
    StrictModel,
    edits,
    edits_columns,
    register_prepare,
    register_stage,
)

from ..decontam import (
    CUT_BY,
    BloomIndex,
    DocHits,
    Searcher,
    build_exact,
    cut_spans,
    item_ngrams,
    load_exact,
    remove_spans,
)
from ..eval_sets import read_items

HITS, SETS, SPANS = "decon_hits", "decon_sets", "decon_spans"
BATCH_CHARS = 1 << 21  # text searched per kernel call
TOP_ITEMS = 10


class EvalSetOptions(StrictModel):
    name: str = Field(..., min_length=1, description="the eval set's name in drop reasons, columns and the report")
    path: LocalPath = Field(..., description="its file: a local path (relative to the config) or any fsspec URL")
    format: Literal["jsonl", "parquet"] = Field("jsonl", description="jsonl (compression inferred) | parquet")
    text_keys: list[str] = Field(
        ["text"],
        min_length=1,
        description="fields joined (by line breaks) into an item's text, e.g. [question, choices, answer]; "
        "a list field contributes each element",
    )


class DecontaminateOptions(StrictModel):
    eval_sets: list[EvalSetOptions] = Field(..., min_length=1, description="the benchmark files to look for")
    ngram: int = Field(13, ge=1, description="words per n-gram (13: GPT-3, OLMo)")
    mode: Literal["drop", "cut", "annotate"] = Field(
        "drop",
        description="drop: drop a contaminated document | cut: remove each matched n-gram with cut_margin "
        "characters either side, drop the document when too little is left | annotate: keep all, record hits",
    )
    min_overlaps: int = Field(1, ge=1, description="matched n-grams before a document counts as contaminated")
    cut_margin: int = Field(200, ge=0, description="cut mode: characters removed either side of a matched n-gram")
    min_chars_left: int = Field(
        200, ge=0, description="cut mode: drop the document when fewer non-space characters are left"
    )
    index: Literal["exact", "bloom"] = Field(
        "exact",
        description="exact: every eval n-gram's hash, hits verified against the words (no false positives; "
        "~23 bytes per eval n-gram + the eval text) | bloom: a Bloom filter per eval set for very large eval "
        "collections (bits per n-gram from bloom_fp_rate, no text, hits unverified)",
    )
    bloom_fp_rate: float = Field(
        1e-6,
        gt=0,
        lt=1,
        description="bloom: false-positive rate per document n-gram probed, per eval set (a document of W words "
        "is a false hit with probability ~W x this: keep it well below 1/W, or raise min_overlaps)",
    )
    examples: int = Field(5, ge=0, description="example matched spans per eval set in the report")
    record_edits: bool = Field(
        True,
        description="cut mode: record every cut (offsets, text, the eval sets it matched) in the edits column, "
        "for `curate diff`",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> DecontaminateOptions:
        names = [s.name for s in self.eval_sets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"eval set names must be unique; repeated: {', '.join(dup)}")
        return self


def _columns(opts: DecontaminateOptions) -> list[Column]:
    cols = [
        Column(HITS, pa.int32(), "n-grams of the document that are eval-set n-grams (decontaminate)"),
        Column(SETS, pa.list_(pa.string()), "eval sets whose n-grams the document contains (null: none)"),
    ]
    if opts.mode == "cut":
        cols.append(
            Column(
                SPANS,
                pa.list_(pa.list_(pa.int64())),
                "[start, end) character offsets, in the text the stage received, of the spans cut out (null: none)",
            )
        )
        cols += edits_columns(opts)
    return cols


# -- the index job --------------------------------------------------------------------------------------


def _write_bytes(folder: Any, name: str, data: bytes) -> None:
    with folder.open(name, "wb") as fh:
        fh.write(data)


class IndexEvalSets(PipelineStep):
    """Reads every eval set and writes the n-gram index to `folder` (one task, before the main flow)."""

    type = "🫂 - DEDUP"
    name = "🧪 eval n-gram index"

    def __init__(self, opts: DecontaminateOptions, folder: str) -> None:
        super().__init__()
        self.opts = opts
        self.folder = folder

    def run(self, data: Iterable[Document] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        opts = self.opts
        out = get_datafolder(self.folder)
        texts: list[str] = []
        item_set: list[int] = []
        sets_meta = []
        with self.track_time():
            for s, spec in enumerate(opts.eval_sets):
                items = read_items(spec.path, spec.format, spec.text_keys)
                texts += items
                item_set += [s] * len(items)
                sets_meta.append({"name": spec.name, "path": spec.path, "items": len(items)})
            meta: dict[str, Any] = {
                "n": opts.ngram,
                "index": opts.index,
                "sets": sets_meta,
                "build": uuid.uuid4().hex,  # a rebuilt index is never mistaken for one a process has loaded
            }
            previews = [t[:200] for t in texts]
            if opts.index == "exact":
                index = build_exact(texts, np.asarray(item_set, dtype=np.int16), opts.ngram)
                buf = io.BytesIO()
                np.savez(buf, **index.arrays())  # type: ignore[arg-type]  # numpy types **kwds like allow_pickle
                _write_bytes(out, "index.npz", buf.getvalue())
                items_table = pa.table({"preview": previews})
                per_item = np.bincount(index.occ_item, minlength=len(texts))
                meta["ngrams"] = int(index.occ_item.shape[0])
                meta["distinct_hashes"] = int(index.keys.shape[0])
                meta["memory_bytes"] = index.nbytes
            else:
                norm, hashes, item, _ = item_ngrams(texts, opts.ngram)
                items_table = pa.table({"preview": previews})
                per_item = np.bincount(item, minlength=len(texts))
                sets = np.asarray(item_set, dtype=np.int16)
                blooms = []
                for s in range(len(opts.eval_sets)):
                    bloom = BloomIndex.build(hashes[sets[item] == s], opts.bloom_fp_rate)
                    buf = io.BytesIO()
                    np.save(buf, bloom.bits)
                    _write_bytes(out, f"bloom_{s}.npy", buf.getvalue())
                    blooms.append({"log2_bits": bloom.log2, "k": bloom.k, "n_keys": bloom.n_keys})
                    sets_meta[s]["bloom_expected_fp_rate"] = bloom.expected_fp_rate
                meta["blooms"] = blooms
                meta["ngrams"] = int(hashes.shape[0])
                meta["memory_bytes"] = sum(1 << (b["log2_bits"] - 3) for b in blooms)
            short = per_item == 0
            for s, m in enumerate(sets_meta):
                m["items_without_ngram"] = int(short[np.asarray(item_set) == s].sum()) if texts else 0
            sink = pa.BufferOutputStream()
            import pyarrow.parquet as pq

            pq.write_table(items_table.append_column("set", pa.array(item_set, pa.int16())), sink)
            _write_bytes(out, "items.parquet", sink.getvalue().to_pybytes())
            _write_bytes(out, "meta.json", json.dumps(meta).encode())
        self.stat_update("eval_items", value=len(texts))
        self.stat_update("eval_ngrams", value=meta["ngrams"])
        return iter(())


class _Index:
    """The index as a task loads it: the searcher, set names, item previews and the index's meta."""

    def __init__(self, folder: str) -> None:
        import pyarrow.parquet as pq

        df = get_datafolder(folder)
        with df.open("meta.json", "rt") as fh:
            self.meta = json.load(fh)
        with df.open("items.parquet", "rb") as fh:
            items = pq.read_table(fh)
        self.names = [s["name"] for s in self.meta["sets"]]
        self.previews = items.column("preview").to_pylist()
        self.item_set = items.column("set").to_numpy()
        n = int(self.meta["n"])
        if self.meta["index"] == "exact":
            with df.open("index.npz", "rb") as fh:
                arrays = dict(np.load(io.BytesIO(fh.read())))
            self.searcher = Searcher(n, exact=load_exact(arrays))
        else:
            blooms = []
            for s, b in enumerate(self.meta["blooms"]):
                with df.open(f"bloom_{s}.npy", "rb") as fh:
                    bits = np.load(io.BytesIO(fh.read()))
                blooms.append(BloomIndex(bits, b["log2_bits"], b["k"], b["n_keys"]))
            self.searcher = Searcher(n, blooms=blooms)


def _load_index(folder: str) -> _Index:
    """Once per worker process and index build: the tasks a worker runs one after the other share it."""
    meta = _read_meta(folder)
    return _load_built(folder, meta["build"] if meta else "")


@functools.lru_cache(maxsize=1)
def _load_built(folder: str, build: str) -> _Index:
    return _Index(folder)


# -- the main-flow step ---------------------------------------------------------------------------------


class _SetReport:
    __slots__ = ("docs_hit", "docs_contaminated", "ngrams_hit", "items", "examples")

    def __init__(self) -> None:
        self.docs_hit = self.docs_contaminated = self.ngrams_hit = 0
        self.items: Counter[int] = Counter()
        self.examples: list[dict[str, Any]] = []

    def to_json(self) -> dict[str, Any]:
        return {
            "docs_hit": self.docs_hit,
            "docs_contaminated": self.docs_contaminated,
            "ngrams_hit": self.ngrams_hit,
            "items": {str(k): v for k, v in self.items.items()},
            "examples": self.examples,
        }


class Decontaminate(CurateStep):
    """Searches each document for eval n-grams and drops, cuts or annotates it (module doc)."""

    name = "decontaminate"

    def __init__(self, opts: DecontaminateOptions, index_folder: str, report_folder: str) -> None:
        super().__init__()
        self.opts = opts
        self.index_folder = index_folder
        self.report_folder = report_folder

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        index = _load_index(self.index_folder)
        reports = [_SetReport() for _ in index.names]
        batch: list[Document] = []
        size = 0
        for doc in data:
            batch.append(doc)
            size += len(doc.text)
            if size >= BATCH_CHARS:
                yield from self._batch(index, reports, batch)
                batch, size = [], 0
        if batch:
            yield from self._batch(index, reports, batch)
        for name, rep in zip(index.names, reports):
            self.stat_update(f"docs_hit/{name}", value=rep.docs_hit)
            self.stat_update(f"ngrams_hit/{name}", value=rep.ngrams_hit)
        folder = get_datafolder(self.report_folder)
        payload = {name: rep.to_json() for name, rep in zip(index.names, reports)}
        _write_bytes(folder, f"{rank:05d}.json", json.dumps(payload).encode())

    def _batch(self, index: _Index, reports: list[_SetReport], batch: list[Document]) -> Iterator[Document]:
        with self.track_time():
            found = index.searcher.search([d.text for d in batch])
        opts = self.opts
        for i, doc in enumerate(batch):
            hits = found.get(i)
            md = doc.metadata
            md[HITS] = len(hits.positions) if hits else 0
            md[SETS] = sorted(index.names[s] for s in hits.sets) if hits else None
            if opts.mode == "cut":
                md[SPANS] = None
            if hits is None:
                yield doc
                continue
            contaminated = len(hits.positions) >= opts.min_overlaps
            self._report(index, reports, doc, hits, contaminated)
            if not contaminated or opts.mode == "annotate":
                yield doc
                continue
            top = min(hits.sets, key=lambda s: (-hits.sets[s], index.names[s]))
            reason = f"contaminated/{index.names[top]}"
            if opts.mode == "drop":
                self.drop(doc, reason)
                continue
            spans = cut_spans(hits.spans, opts.cut_margin, len(doc.text))
            md[SPANS] = [[s, e] for s, e in spans]
            base = doc.text
            doc.text = remove_spans(base, spans)
            if opts.record_edits:
                labels = _span_sets(spans, hits, opts.cut_margin, index.names)
                edits.record(
                    md, self.label or "decontaminate", base, [(s, e, CUT_BY, lab) for (s, e), lab in zip(spans, labels)]
                )
            if sum(1 for c in doc.text if not c.isspace()) < opts.min_chars_left:
                self.drop(doc, reason)
                continue
            yield doc

    def _report(
        self, index: _Index, reports: list[_SetReport], doc: Document, hits: DocHits, contaminated: bool
    ) -> None:
        for s, k in hits.sets.items():
            rep = reports[s]
            rep.docs_hit += 1
            rep.docs_contaminated += contaminated
            rep.ngrams_hit += k
            if len(rep.examples) < self.opts.examples:
                j = next(i for i, in_sets in enumerate(hits.position_sets) if s in in_sets)
                a, z = hits.spans[j]
                rep.examples.append({"id": doc.id, "start": a, "end": z, "text": doc.text[a:z][:500]})
        for item, k in hits.items.items():
            reports[int(index.item_set[item])].items[item] += k

    def stats_report(self) -> dict[str, Any] | None:
        """Per eval set, merged over every task's report file: documents and n-grams hit, the items most hit
        (with the start of their text) and example spans; with the index's size. None before any task ran."""
        df = get_datafolder(self.report_folder)
        if not df.isdir(""):
            return None
        merged: dict[str, dict[str, Any]] = {}
        items: dict[str, Counter[int]] = {}
        for name in sorted(df.list_files(glob_pattern="*.json")):
            with df.open(name, "rt") as fh:
                part = json.load(fh)
            for set_name, rep in part.items():
                m = merged.setdefault(
                    set_name, {"docs_hit": 0, "docs_contaminated": 0, "ngrams_hit": 0, "examples": []}
                )
                for key in ("docs_hit", "docs_contaminated", "ngrams_hit"):
                    m[key] += rep[key]
                m["examples"] = (m["examples"] + rep["examples"])[: self.opts.examples]
                items.setdefault(set_name, Counter()).update({int(k): v for k, v in rep["items"].items()})
        index_meta = _read_meta(self.index_folder)
        previews = _read_previews(self.index_folder) if items else []
        for set_name, m in merged.items():
            top = items.get(set_name, Counter()).most_common(TOP_ITEMS)
            m["items_hit"] = len(items.get(set_name, ()))
            m["top_items"] = [{"item": i, "ngrams_hit": k, "text": previews[i] if previews else None} for i, k in top]
        out: dict[str, Any] = {"kind": "decontamination", "mode": self.opts.mode, "sets": merged}
        if index_meta:
            out["index"] = {k: v for k, v in index_meta.items() if k != "sets"}
            for s in index_meta.get("sets", []):
                if s["name"] in merged:
                    merged[s["name"]]["eval_items"] = s["items"]
                    merged[s["name"]]["items_without_ngram"] = s.get("items_without_ngram", 0)
        return out


def _span_sets(spans: list[tuple[int, int]], hits: DocHits, margin: int, names: list[str]) -> list[tuple[str, ...]]:
    """For each cut span, the eval sets of the matches it removed ("eval set NAME"), for the edits' note."""
    starts = [s for s, _ in spans]
    sets: list[set[int]] = [set() for _ in spans]
    for (s, _), in_sets in zip(hits.spans, hits.position_sets):
        sets[bisect.bisect_right(starts, max(0, s - margin)) - 1].update(in_sets)
    return [tuple(f"eval set {names[x]}" for x in sorted(found)) for found in sets]


def _read_meta(folder: str) -> dict[str, Any] | None:
    df = get_datafolder(folder)
    if not df.isfile("meta.json"):
        return None
    with df.open("meta.json", "rt") as fh:
        return json.load(fh)


def _read_previews(folder: str) -> list[str]:
    import pyarrow.parquet as pq

    df = get_datafolder(folder)
    if not df.isfile("items.parquet"):
        return []
    with df.open("items.parquet", "rb") as fh:
        return pq.read_table(fh, columns=["preview"]).column("preview").to_pylist()


@register_stage(
    "decontaminate",
    DecontaminateOptions,
    "find eval-set word n-grams in documents (exact, verified): drop, cut or annotate contaminated ones",
    columns=_columns,
)
def build_decontaminate(opts: DecontaminateOptions, ctx: BuildContext) -> None:
    label = ctx.stage_label
    index = ctx.work_path(label, "index")
    ctx.add_job(f"{label}_index", [IndexEvalSets(opts, index)], tasks=1)
    ctx.add(Decontaminate(opts, index, ctx.work_path(label, "report")))


@register_prepare("decontaminate")
def prepare_decontaminate(opts: DecontaminateOptions, pf: PreflightContext) -> None:
    import os

    from curate.core.options import is_url

    for i, spec in enumerate(opts.eval_sets):
        if not is_url(spec.path) and not os.path.isfile(spec.path):
            pf.problem(f"eval set {spec.name!r}: no file {spec.path}", key=f"{pf.key}.eval_sets[{i}].path")
