"""The `prox_refine` stage: ProX doc-level then chunk-level refinement of every document.

Per batch of documents (`batch_size`): doc prompts -> doc model -> `drop_doc()` drops; the rest
get chunk prompts -> chunk model -> programs applied by the executor. Dropped documents go to
`self.drop(doc, "prox_<status>")` (so to rejected/ with the prox_* columns). Give the stage
`resources:` in YAML to run it as its own (GPU) job after the CPU stages.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Literal

import pyarrow as pa
from datatrove.data import Document
from datatrove.utils.batching import batched
from pydantic import Field, model_validator

from curate.core.options import ModelRef, StrictModel
from curate.core.stage_api import BuildContext, Column, register_prepare, register_stage
from curate.core.steps import CurateStep

from . import columns as col
from .backends import Backend, make_backend
from .columns import DROPPED_BY_DOC, IGNORED, KEPT
from .executor import Outcome, Rules, apply_chunk_programs, doc_decision
from .program import CHUNK_CALLS, DOC_CALLS, parse_program, storable
from .prompts import MAX_CHUNK_TOKENS, MAX_DOC_TOKENS, PromptBuilder, load_tokenizer, tokenizer_for_model

COLUMNS = [
    Column(col.STATUS, pa.string(), " | ".join(col.STATUSES)),
    Column(col.DOC_PROGRAM, pa.string(), "raw doc-stage model output (null when the doc stage is off)"),
    Column(col.CHUNK_PROGRAMS, pa.list_(pa.string()), "raw chunk-stage model output, one per chunk"),
    Column(col.ERRORS, pa.list_(pa.string()), "one reason per rejected call or execution error"),
    Column(col.EDITS, pa.string(), "JSON list of applied operations in order (normalize / remove_lines, "
                                   "0-based inclusive line numbers of the original text)"),
    Column(col.ORIGINAL_TEXT, pa.string(), "text before refinement (null when unchanged)"),
]


class ProxRefineOptions(StrictModel):
    backend: Literal["rules", "vllm", "transformers"] = Field(
        "rules", description="program generator: rules (CPU, no model), vllm (offline LLM.generate), transformers")
    doc_stage: bool = Field(True, description="run the doc-level stage (drop_doc / keep_doc)")
    chunk_stage: bool = Field(True, description="run the chunk-level stage (remove_lines / normalize)")
    doc_model: ModelRef = Field("gair-prox/web-doc-refining-lm", description="doc refiner: local folder or hub id")
    chunk_model: ModelRef = Field("gair-prox/web-chunk-refining-lm", description="chunk refiner: local folder or hub id")
    tokenizer: ModelRef | None = Field(None, description="tokenizer.json for prompts (default: the model folder's, "
                                                    "else the bundled Llama-2 one)")
    dtype: str = Field("bfloat16", description="model weights dtype (vllm / transformers)")
    max_model_len: int = Field(2048, ge=64, description="context length (ProX refiners: 2048)")
    gpu_memory_utilization: float = Field(0.4, gt=0, le=1, description="vllm: GPU memory share per engine "
                                                                        "(two engines when the models differ)")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per engine")
    enforce_eager: bool = Field(False, description="vllm: no CUDA graphs (CPU / debugging)")
    device: str = Field("auto", description="transformers: cpu | cuda | auto")
    generate_batch_size: int = Field(16, ge=1, description="transformers: prompts per generate call")
    batch_size: int = Field(1024, ge=1, description="documents per generation round (vllm batches all their prompts)")
    doc_max_tokens: int = Field(16, ge=1, description="tokens generated for the doc stage")
    chunk_max_tokens: int = Field(256, ge=1, description="tokens generated per chunk (ProX: 256)")
    max_doc_tokens: int = Field(MAX_DOC_TOKENS, ge=16, description="doc prompt: document truncated to this many tokens")
    max_chunk_tokens: int = Field(MAX_CHUNK_TOKENS, ge=16, description="chunk prompt: lines packed into chunks of at most this many tokens")
    max_errors: int = Field(2, ge=1, description="ignore a chunk program with this many errors or more")
    min_fraction_kept: float = Field(0.05, ge=0, le=1, description="drop when <= this share of words remains")
    min_words_kept: int = Field(10, ge=0, description="drop when <= this many words remain")
    max_growth: float = Field(2.0, ge=1, description="a normalize that would make the text longer than this "
                                                     "x its original length is refused (counted as an error)")

    @model_validator(mode="after")
    def _one_stage(self) -> "ProxRefineOptions":
        if not (self.doc_stage or self.chunk_stage):
            raise ValueError("prox_refine: doc_stage and chunk_stage are both off; enable one or drop the stage")
        return self


class ProxRefiner(CurateStep):
    name = "prox refine"

    def __init__(self, opts: ProxRefineOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts
        self._backends: dict[str, Backend] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_backends"] = {}  # engines never travel to workers; each worker builds its own lazily
        return state

    def backend(self, stage: str) -> Backend:
        b = self._backends.get(stage)
        if b is None:
            o = self.opts
            b = self._backends[stage] = make_backend(
                o.backend, model=o.doc_model if stage == "doc" else o.chunk_model, dtype=o.dtype,
                max_model_len=o.max_model_len, gpu_memory_utilization=o.gpu_memory_utilization,
                tensor_parallel_size=o.tensor_parallel_size, enforce_eager=o.enforce_eager, device=o.device,
                batch_size=o.generate_batch_size)
        return b

    def builder(self, stage: str) -> PromptBuilder:
        o = self.opts
        if o.tokenizer:
            tok = load_tokenizer(o.tokenizer)
        elif o.backend == "rules":
            tok = load_tokenizer(None)
        else:
            tok = tokenizer_for_model(o.doc_model if stage == "doc" else o.chunk_model)
        return PromptBuilder(tok, max_doc_tokens=o.max_doc_tokens, max_chunk_tokens=o.max_chunk_tokens,
                             token_ids=o.backend != "rules")

    # -- one batch --------------------------------------------------------------------------------
    def refine(self, docs: list[Document]) -> list[Outcome]:
        o = self.opts
        rules = Rules(o.max_errors, o.min_fraction_kept, o.min_words_kept, o.max_growth)
        n = len(docs)
        texts = [d.text for d in docs]
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        doc_prog: list[str | None] = [None] * n
        outcomes: list[Outcome | None] = [None] * n
        alive = nonempty
        if o.doc_stage:
            with self.track_time("doc"):
                prompts = self.builder("doc").doc_prompts([texts[i] for i in nonempty])
                gens = self.backend("doc").generate(prompts, o.doc_max_tokens)
            alive = []
            for i, g in zip(nonempty, gens):
                doc_prog[i] = g.text
                prog = parse_program(g.text, DOC_CALLS, "doc: ")
                drop, errs = doc_decision(prog)  # a fatal program decides nothing (as in the chunk stage)
                if drop:
                    outcomes[i] = Outcome(DROPPED_BY_DOC, texts[i], errs)
                elif not o.chunk_stage:
                    valid = not prog.fatal and any(c.name in ("keep_doc", "drop_doc") for c in prog.calls)
                    outcomes[i] = Outcome(IGNORED if errs and not valid else KEPT, texts[i], errs)
                else:
                    alive.append(i)
                    outcomes[i] = Outcome(KEPT, texts[i], errs)  # chunk stage refines it below
        chunk_progs: list[list[str]] = [[] for _ in range(n)]
        if o.chunk_stage:
            with self.track_time("chunk"):
                per_doc = self.builder("chunk").chunk_prompts([texts[i] for i in alive])
                flat = [p for ps in per_doc for p in ps]
                gens = self.backend("chunk").generate(flat, o.chunk_max_tokens)
            k = 0
            for i, ps in zip(alive, per_doc):
                outs = [g.text for g in gens[k : k + len(ps)]]
                k += len(ps)
                chunk_progs[i] = outs
                progs = [parse_program(t, CHUNK_CALLS, f"chunk {c}: ") for c, t in enumerate(outs)]
                res = apply_chunk_programs(texts[i], progs, rules)
                prev = outcomes[i]
                if prev is not None and prev.errors:
                    res.errors = prev.errors + res.errors
                outcomes[i] = res
                self.stat_update("chunks", value=len(ps))
        for i in range(n):
            if outcomes[i] is None:  # empty / whitespace-only
                if o.chunk_stage:
                    outcomes[i] = apply_chunk_programs(texts[i], [], rules)
                else:
                    outcomes[i] = Outcome(KEPT, texts[i], ["empty document: not sent to the model"])
            out = outcomes[i]
            meta = docs[i].metadata
            meta[col.STATUS] = out.status
            # raw model output is stored as it came, except a lone surrogate (U+FFFD): Parquet needs UTF-8
            meta[col.DOC_PROGRAM] = storable(doc_prog[i]) if o.doc_stage else None
            meta[col.CHUNK_PROGRAMS] = [storable(t) for t in chunk_progs[i]]
            meta[col.ERRORS] = out.errors
            meta[col.EDITS] = out.edits_json()
            meta[col.ORIGINAL_TEXT] = texts[i] if out.text != texts[i] else None
        return outcomes  # type: ignore[return-value]

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for batch in batched(data, self.opts.batch_size):
            outcomes = self.refine(batch)
            for doc, out in zip(batch, outcomes):
                self.stat_update(f"status/{out.status}")
                if out.errors:
                    self.stat_update("docs_with_errors")
                if out.dropped:
                    self.drop(doc, f"prox_{out.status}")
                    continue
                doc.text = out.text
                yield doc


@register_stage("prox_refine", ProxRefineOptions,
                "ProX refinement: a small LM writes a per-document program (drop / remove_lines / normalize); "
                "a sandboxed executor applies it", columns=COLUMNS, group="refine")
def build(opts: ProxRefineOptions, ctx: BuildContext) -> None:
    ctx.add(ProxRefiner(opts))


@register_prepare("prox_refine")
def prepare(opts: ProxRefineOptions, pf: Any) -> None:
    """The refiner folders (config + weights) and the prompt tokenizer exist; hub ids are fetched once here."""
    if opts.backend != "rules":
        for stage, field in (("doc", "doc_model"), ("chunk", "chunk_model")):
            if not getattr(opts, f"{stage}_stage"):
                continue
            folder = pf.model_folder(getattr(opts, field), f"{pf.key}.{field}", what=f"{stage} refiner")
            if folder is not None and pf.is_local(folder):
                setattr(opts, field, folder)
    if opts.tokenizer:
        path = pf.tokenizer_file(opts.tokenizer, f"{pf.key}.tokenizer")
        if path is not None and pf.is_local(path):
            opts.tokenizer = path

from . import label  # noqa: E402,F401  registers refiner_label (transitional: one module per stage follows)
