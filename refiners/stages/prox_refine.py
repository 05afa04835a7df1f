"""The `prox_refine` stage: ProX doc-level then chunk-level refinement of every document.

Per batch of documents (`batch_size`): doc prompts -> doc model -> `drop_doc()` drops; the rest
get chunk prompts -> chunk model -> programs applied (refiners/apply.py). Dropped documents go to
`self.drop(doc, "prox_<status>")` (so to rejected/ with the prox_* columns). Give the stage
`resources:` in YAML to run it as its own (GPU) job after the CPU stages.

The generator is a backend (refiners/backends/, one module each). Its own keys are written flat in
the stage (`backend: vllm`, `gpu_memory_utilization: 0.4`) and validated by that backend's options
model, so a key of another backend is an error naming both.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from datatrove.data import Document
from datatrove.utils.batching import batched
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from curate.core.stage_api import (
    BuildContext,
    Column,
    CurateStep,
    LocalPath,
    ModelRef,
    PreflightContext,
    StrictModel,
    edits,
    edits_columns,
    register_prepare,
    register_stage,
)

from .. import chat
from .. import columns as col
from ..apply import DEFAULT_LIMITS, DecisionLimits, Outcome, apply_chunk_programs, doc_decision
from ..backends.base import Backend, BackendSpec, all_backends, backend_names, get_backend
from ..checkpoint import GenerationCheckpoint, doc_key
from ..columns import DROPPED_BY_DOC, IGNORED, KEPT
from ..program import CHUNK_CALLS, DOC_CALLS, parse_program, storable
from ..prompts import MAX_CHUNK_TOKENS, MAX_DOC_TOKENS, Prompt, PromptBuilder, load_tokenizer
from ..spans import prox_spans

COLUMNS = [
    Column(col.STATUS, pa.string(), " | ".join(col.STATUSES)),
    Column(col.DOC_PROGRAM, pa.string(), "raw doc-stage model output (null when the doc stage is off)"),
    Column(col.CHUNK_PROGRAMS, pa.list_(pa.string()), "raw chunk-stage model output, one per chunk"),
    Column(col.ERRORS, pa.list_(pa.string()), "one reason per rejected call or execution error"),
    Column(
        col.EDITS,
        pa.string(),
        "JSON list of applied operations in order (normalize / remove_lines, "
        "0-based inclusive line numbers of the original text)",
    ),
    Column(col.ORIGINAL_TEXT, pa.string(), "text before refinement (null when unchanged)"),
]

# stats keys of model generation (pipeline/stats.py derives tokens/s and device-hours from them)
GEN = "gen/"

# `[doc]\n` and `\n[/doc]` around a chunk's lines (its budget counts the lines only)
CHUNK_WRAP_TOKENS = 8

# backends known under another name before; the old name is an error that names the new one
RENAMED_BACKENDS = {"rules": "boilerplate"}


class ProxRefineOptions(StrictModel):
    backend: str = Field(
        "boilerplate",
        description=f"program generator: {' | '.join(backend_names())}; a key "
        "marked with backends below is read by those only",
    )
    doc_stage: bool = Field(True, description="run the doc-level stage (drop_doc / keep_doc)")
    chunk_stage: bool = Field(True, description="run the chunk-level stage (remove_lines / normalize)")
    doc_model: ModelRef = Field("gair-prox/web-doc-refining-lm", description="doc refiner: local folder or hub id")
    chunk_model: ModelRef = Field(
        "gair-prox/web-chunk-refining-lm", description="chunk refiner: local folder or hub id"
    )
    tokenizer: ModelRef | None = Field(
        None, description="tokenizer.json for prompts; unset: the model folder's, else the bundled Llama-2 one"
    )
    chat_template: LocalPath | None = Field(
        None,
        description="Jinja chat template for a model without ProX's Llama-2 vocabulary; "
        "unset: the model's own (a Llama-2-vocabulary model gets ProX's exact [INST] prompt)",
    )
    checkpoint: bool = Field(
        True,
        description="model backends: keep each task's programs in the run's work folder after every "
        "generation call, so a rerun of a killed task regenerates at most one batch",
    )
    batch_size: int = Field(1024, ge=1, description="documents per generation round (vllm batches all their prompts)")
    doc_max_tokens: int = Field(16, ge=1, description="tokens generated for the doc stage")
    chunk_max_tokens: int = Field(256, ge=1, description="tokens generated per chunk (ProX: 256)")
    max_doc_tokens: int = Field(MAX_DOC_TOKENS, ge=16, description="doc prompt: document truncated to this many tokens")
    max_chunk_tokens: int = Field(
        MAX_CHUNK_TOKENS, ge=16, description="chunk prompt: lines packed into chunks of at most this many tokens"
    )
    max_errors: int = Field(
        DEFAULT_LIMITS.max_errors, ge=1, description="ignore a chunk program with this many errors or more"
    )
    min_fraction_kept: float = Field(
        DEFAULT_LIMITS.min_fraction_kept, ge=0, le=1, description="drop when <= this share of words remains"
    )
    min_words_kept: int = Field(DEFAULT_LIMITS.min_words_kept, ge=0, description="drop when <= this many words remain")
    max_growth: float = Field(
        DEFAULT_LIMITS.max_growth,
        ge=1,
        description="a normalize that would make the text longer "
        "than this x its original length is refused "
        "(counted as an error)",
    )
    record_edits: bool = Field(
        True, description="record every removal and normalization as spans in the edits column, for `curate diff`"
    )
    # the chosen backend's own options (its keys as written flat in the stage), validated by its model
    _backend_options: BaseModel | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _backend_keys(cls, data: Any, handler: Any) -> ProxRefineOptions:
        if not isinstance(data, dict):
            return handler(data)
        own = {k: v for k, v in data.items() if k in cls.model_fields}
        rest = {k: v for k, v in data.items() if k not in cls.model_fields}
        errors: list[InitErrorDetails] = []
        name = own.get("backend", cls.model_fields["backend"].default)
        spec = _backend_spec(name, errors)
        backend_options = None
        if spec is not None:
            mine = {k: v for k, v in rest.items() if k in spec.options.model_fields}
            try:
                backend_options = spec.options.model_validate(mine)
            except ValidationError as e:
                errors += _details(e)
            rest = {k: v for k, v in rest.items() if k not in mine}
        for key, value in rest.items():
            errors.append(_foreign_key(cls, key, value, spec))
        try:
            model = handler(own)
        except ValidationError as e:
            errors = _details(e) + errors
            model = None
        if errors or model is None:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        model._backend_options = backend_options
        return model

    @model_validator(mode="after")
    def _one_stage(self) -> ProxRefineOptions:
        if not (self.doc_stage or self.chunk_stage):
            raise ValueError("prox_refine: doc_stage and chunk_stage are both off; enable one or drop the stage")
        return self

    @property
    def backend_options(self) -> BaseModel:
        """The chosen backend's options (its defaults when none were given)."""
        if self._backend_options is None:
            self._backend_options = get_backend(self.backend).options()
        return self._backend_options

    @property
    def limits(self) -> DecisionLimits:
        return DecisionLimits(self.max_errors, self.min_fraction_kept, self.min_words_kept, self.max_growth)

    @classmethod
    def option_fields(cls) -> list[tuple[str, FieldInfo, str | None]]:
        """Every key the stage accepts, for `curate stages`: (key, field, None for the stage's own keys
        or "backend vllm" / "backends transformers, vllm" for a key of some backends only)."""
        out: list[tuple[str, FieldInfo, str | None]] = [(k, f, None) for k, f in cls.model_fields.items()]
        owners: dict[str, list[BackendSpec]] = {}
        for spec in all_backends():
            for key in spec.options.model_fields:
                owners.setdefault(key, []).append(spec)
        for key, specs in owners.items():
            names = ", ".join(s.name for s in specs)
            out.append((key, specs[0].options.model_fields[key], f"backend{'s' if len(specs) > 1 else ''} {names}"))
        return out


def _details(err: ValidationError) -> list[InitErrorDetails]:
    """A ValidationError's problems, to be raised again together with others (messages as they were)."""
    return [
        InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
        for e in err.errors()
    ]


def _backend_spec(name: Any, errors: list[InitErrorDetails]) -> BackendSpec | None:
    if not isinstance(name, str):
        return None  # the field's own validation says what is wrong with it
    try:
        return get_backend(name)
    except KeyError:
        pass
    names = backend_names()
    if name in RENAMED_BACKENDS:
        msg = f"backend {name!r} is now called {RENAMED_BACKENDS[name]!r} (did you mean '{RENAMED_BACKENDS[name]}'?)"
    else:
        hint = difflib.get_close_matches(name, names, n=1)
        msg = (
            f"unknown backend {name!r}"
            + (f" (did you mean '{hint[0]}'?)" if hint else "")
            + f"; backends: {', '.join(names)}"
        )
    errors.append(InitErrorDetails(type=PydanticCustomError("unknown_backend", msg), loc=("backend",), input=name))
    return None


def _foreign_key(cls: type[BaseModel], key: str, value: Any, spec: BackendSpec | None) -> InitErrorDetails:
    """The error for a key that is neither the stage's nor the chosen backend's."""
    owners = [s.name for s in all_backends() if key in s.options.model_fields]
    if owners and spec is not None:
        which = " or ".join(repr(o) for o in owners)
        msg = f"an option of backend {which}, not of {spec.name!r}"
        return InitErrorDetails(type=PydanticCustomError("backend_option", msg), loc=(key,), input=value)
    if owners:  # the backend itself is wrong (reported on its own key); this key is fine for its owner
        msg = f"an option of backend {' or '.join(repr(o) for o in owners)}"
        return InitErrorDetails(type=PydanticCustomError("backend_option", msg), loc=(key,), input=value)
    allowed = list(cls.model_fields) + (list(spec.options.model_fields) if spec is not None else [])
    hint = difflib.get_close_matches(key, allowed, n=1)
    msg = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "") + f"; allowed keys: {', '.join(allowed)}"
    return InitErrorDetails(type=PydanticCustomError("unknown_key", msg), loc=(key,), input=value)


class ProxRefiner(CurateStep):
    per_document = True  # on_stage_error: skip may rerun a document alone
    name = "prox refine"

    def __init__(self, opts: ProxRefineOptions, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts
        self._backends: dict[str, Backend] = {}
        self.checkpoint_dir: str | None = None  # set by the plan (a work folder of the run); None: no checkpoints
        self._checkpoint: GenerationCheckpoint | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_checkpoint"] = None
        state["_backends"] = {}  # engines never travel to workers; each worker builds its own lazily
        return state

    def _model(self, stage: str) -> str:
        return self.opts.doc_model if stage == "doc" else self.opts.chunk_model

    def backend(self, stage: str) -> Backend:
        b = self._backends.get(stage)
        if b is None:
            spec = get_backend(self.opts.backend)
            model = self._model(stage) if spec.needs_model else None
            b = self._backends[stage] = spec.create(model, self.opts.backend_options)
        return b

    def builder(self, stage: str) -> PromptBuilder:
        o = self.opts
        # a model backend reads token ids of its model's tokenizer; one without a model reads the text
        needs_model = get_backend(o.backend).needs_model
        tok_file = _tokenizer_file(o, self._model(stage)) if needs_model else None
        tok = load_tokenizer(tok_file)
        template = None
        if needs_model and chat.wants_template(tok_file, o.chat_template):
            template = chat.load_template(self._model(stage), o.chat_template)
        return PromptBuilder(
            tok,
            max_doc_tokens=o.max_doc_tokens,
            max_chunk_tokens=o.max_chunk_tokens,
            token_ids=needs_model,
            template=template,
        )

    # -- one batch --------------------------------------------------------------------------------
    def refine(self, docs: list[Document]) -> list[Outcome]:
        """Each document's outcome: the doc stage decides drops, the chunk stage edits what is left; the
        programs, status and edits land in the document's metadata."""
        o = self.opts
        n = len(docs)
        texts = [d.text for d in docs]
        nonempty = [i for i, t in enumerate(texts) if t.strip()]
        doc_prog: list[str | None] = [None] * n
        outcomes: list[Outcome | None] = [None] * n
        alive = self._doc_stage(docs, texts, nonempty, doc_prog, outcomes) if o.doc_stage else nonempty
        chunk_progs: list[list[str]] = [[] for _ in range(n)]
        if o.chunk_stage:
            self._chunk_stage(docs, texts, alive, chunk_progs, outcomes)
        done: list[Outcome] = []
        for i in range(n):
            out = outcomes[i]
            if out is None:  # empty or whitespace-only: no stage saw it
                out = self._empty_outcome(texts[i])
            self._record(docs[i], texts[i], out, doc_prog[i], chunk_progs[i])
            done.append(out)
        return done

    def _doc_stage(
        self,
        docs: list[Document],
        texts: list[str],
        nonempty: list[int],
        doc_prog: list[str | None],
        outcomes: list[Outcome | None],
    ) -> list[int]:
        """Keep or drop each non-empty document (its program and outcome filled in); the documents left for
        the chunk stage."""
        o = self.opts
        with self.track_time("doc"):
            prompts = self.builder("doc").doc_prompts([texts[i] for i in nonempty])
            gens = self._generate("doc", [docs[i] for i in nonempty], [[p] for p in prompts], o.doc_max_tokens)
        alive = []
        for i, g in zip(nonempty, gens):
            doc_prog[i] = g[0]
            prog = parse_program(g[0], DOC_CALLS, "doc: ")
            drop, errs = doc_decision(prog)  # a fatal program decides nothing (as in the chunk stage)
            if drop:
                outcomes[i] = Outcome(DROPPED_BY_DOC, texts[i], errs)
            elif not o.chunk_stage:
                valid = not prog.fatal and any(c.name in ("keep_doc", "drop_doc") for c in prog.calls)
                outcomes[i] = Outcome(IGNORED if errs and not valid else KEPT, texts[i], errs)
            else:
                alive.append(i)
                outcomes[i] = Outcome(KEPT, texts[i], errs)  # chunk stage refines it below
        return alive

    def _chunk_stage(
        self,
        docs: list[Document],
        texts: list[str],
        alive: list[int],
        chunk_progs: list[list[str]],
        outcomes: list[Outcome | None],
    ) -> None:
        """Edit each document left by the doc stage with its chunks' programs (errors of both stages kept)."""
        with self.track_time("chunk"):
            per_doc = self.builder("chunk").chunk_prompts([texts[i] for i in alive])
            chunk_gens = self._generate("chunk", [docs[i] for i in alive], per_doc, self.opts.chunk_max_tokens)
        for i, ps, outs in zip(alive, per_doc, chunk_gens):
            chunk_progs[i] = outs
            progs = [parse_program(t, CHUNK_CALLS, f"chunk {c}: ") for c, t in enumerate(outs)]
            res = apply_chunk_programs(texts[i], progs, self.opts.limits)
            prev = outcomes[i]
            if prev is not None and prev.errors:
                res.errors = prev.errors + res.errors
            outcomes[i] = res
            self.stat_update("chunks", value=len(ps))

    def _empty_outcome(self, text: str) -> Outcome:
        """An empty or whitespace-only document, never sent to a model."""
        if self.opts.chunk_stage:
            return apply_chunk_programs(text, [], self.opts.limits)
        return Outcome(KEPT, text, ["empty document: not sent to the model"])

    def _record(self, doc: Document, text: str, out: Outcome, doc_prog: str | None, chunk_progs: list[str]) -> None:
        """The ProX columns of one document, and its edits as spans when record_edits."""
        meta = doc.metadata
        meta[col.STATUS] = out.status
        # raw model output is stored as it came, except a lone surrogate (U+FFFD): Parquet needs UTF-8
        meta[col.DOC_PROGRAM] = storable(doc_prog) if self.opts.doc_stage else None
        meta[col.CHUNK_PROGRAMS] = [storable(t) for t in chunk_progs]
        meta[col.ERRORS] = out.errors
        meta[col.EDITS] = out.edits_json()
        meta[col.ORIGINAL_TEXT] = text if out.text != text else None
        if self.opts.record_edits and not out.dropped and out.text != text:
            spans = prox_spans(text, out.edits, out.text)
            edits.record(meta, self.label or "prox_refine", text, spans)

    # -- generation: checkpointed, with telemetry ---------------------------------------------
    def _generate(
        self, stage: str, docs: list[Document], prompts: list[list[Prompt]], max_tokens: int
    ) -> list[list[str]]:
        """Each document's outputs (one per prompt): from the task's checkpoint, else generated and flushed."""
        ck = self._checkpoint
        keys = [doc_key(str(d.id), d.text) for d in docs] if ck is not None else []
        out: list[list[str] | None] = [None] * len(docs)
        if ck is not None:
            for j, (key, ps) in enumerate(zip(keys, prompts)):
                got = ck.get(stage, key)
                if isinstance(got, list) and len(got) == len(ps):
                    out[j] = got
            self.stat_update(f"{GEN}restored_docs", value=sum(o is not None for o in out))
        todo = [j for j, o in enumerate(out) if o is None]
        flat = [p for j in todo for p in prompts[j]]
        backend = self.backend(stage)
        t0 = time.perf_counter()
        gens = backend.generate(flat, max_tokens) if flat else []
        wall = time.perf_counter() - t0
        if flat:
            self.stat_update(f"{GEN}prompts", value=len(flat))
        if flat and get_backend(self.opts.backend).needs_model:  # a model's cost; the boilerplate one has none
            devices = int(getattr(getattr(backend, "options", None), "tensor_parallel_size", 1) or 1)
            self.stat_update(f"{GEN}prompt_tokens", value=sum(len(p.token_ids) for p in flat))
            self.stat_update(f"{GEN}generated_tokens", value=sum(len(g.token_ids) for g in gens))
            self.stat_update(f"{GEN}device_ms", value=round(wall * devices * 1000))
        k = 0
        fresh: dict[str, object] = {}
        for j in todo:
            n = len(prompts[j])
            out[j] = [g.text for g in gens[k : k + n]]
            k += n
            if ck is not None:
                fresh[keys[j]] = out[j]
        if ck is not None:
            ck.flush(stage, fresh)
        return [o if o is not None else [] for o in out]

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self._checkpoint = None
        if self.checkpoint_dir and self.opts.checkpoint and get_backend(self.opts.backend).needs_model:
            self._checkpoint = GenerationCheckpoint(self.checkpoint_dir, rank)
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


@register_stage(
    "prox_refine",
    ProxRefineOptions,
    "ProX refinement: a small LM writes a per-document program (drop / remove_lines / normalize); "
    "it is parsed and applied, never run as code",
    columns=lambda opts: [*COLUMNS, *edits_columns(opts)],
)
def build(opts: ProxRefineOptions, ctx: BuildContext) -> None:
    """One step; its generations are checkpointed in a work folder of the run (one per stage label)."""
    step = ProxRefiner(opts)
    step.checkpoint_dir = ctx.work_path("prox_checkpoints", ctx.stage_label.replace("/", "_"))
    ctx.add(step)


def _tokenizer_file(opts: ProxRefineOptions, model: str) -> str | None:
    """The tokenizer.json prompts are encoded with: the option, else the model folder's, else None (Llama-2)."""
    if opts.tokenizer:
        return opts.tokenizer
    own = Path(model) / "tokenizer.json"
    return str(own) if own.is_file() else None


def _check_prompts(opts: ProxRefineOptions, stage: str, model: str, pf: PreflightContext) -> None:
    """A model that cannot take this stage's prompts is refused here, naming it and why."""
    limits = getattr(opts.backend_options, "max_model_len", None)
    if limits is None:
        return
    if stage == "doc":
        user, gen = opts.max_doc_tokens, opts.doc_max_tokens
    else:
        user, gen = opts.max_chunk_tokens + CHUNK_WRAP_TOKENS, opts.chunk_max_tokens
    why = chat.problem(model, _tokenizer_file(opts, model), opts.chat_template, limits, user, gen)
    if why:
        pf.problem(f"{stage} refiner {model}: {why}", f"{pf.key}.{stage}_model")


@register_prepare("prox_refine")
def prepare(opts: ProxRefineOptions, pf: PreflightContext) -> None:
    """The refiner folders (config + weights) and the prompt tokenizer exist; hub ids are fetched once here."""
    for missing in get_backend(opts.backend).missing_packages():
        pf.problem(missing, f"{pf.key}.backend")
    if get_backend(opts.backend).needs_model:
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
    if opts.chat_template and not Path(opts.chat_template).is_file():
        pf.problem(f"chat template {opts.chat_template!r} not found", f"{pf.key}.chat_template")
        return
    if get_backend(opts.backend).needs_model:
        for stage in ("doc", "chunk"):
            model = getattr(opts, f"{stage}_model")
            if getattr(opts, f"{stage}_stage") and pf.is_local(model) and Path(model).is_dir():
                _check_prompts(opts, stage, model, pf)
