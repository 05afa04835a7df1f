"""The `refiner_label` stage: build `prox_refine`'s exact prompts, ask a teacher, keep valid targets as SFT data.

Why a stage (and not a script): labelling is a pass over a corpus like any other, so it gets the
pipeline's readers (jsonl / parquet / WARC, any fsspec path), task sharding, Slurm / Ray executors,
per-task completion markers (a rerun redoes only unfinished tasks) and conservation accounting for
free. Documents pass through unchanged (docs in = docs out) with a per-document summary in the
output columns; the SFT examples go to `OUTPUT/sft/NNNNN.parquet`, one file per task written
atomically with that task (a killed task leaves nothing, a finished one is never redone), so
`OUTPUT/sft/` is complete exactly when the run is.

One SFT row per doc prompt and per chunk prompt (`SFT_SCHEMA`): the prompt string (token ids are
rebuilt by the trainer with the student's tokenizer, BOS once as `prox_refine` does), the target
program in canonical form, the teacher's raw answer, and whether it is valid (with the reason if
not). Invalid rows stay in the file for inspection; training and evaluation skip them.

Checks on every teacher answer (refiners/sft.py), counted in stats (`doc/*`, `chunk/*`, `invalid/*`):
* parsed with `refiners/program.py` at the right stage; any rejected line makes it invalid;
* doc stage: needs a `drop_doc()` / `keep_doc()` decision;
* chunk stage: `remove_lines` must stay inside the chunk's lines, a `normalize` source must occur in
  them (otherwise the student would learn to point at text it never sees);
* a chunk program removing more than `max_removed_share` of the chunk's non-blank lines is capped
  (removals kept in line order up to the share) or dropped (`over_limit`);
* a target longer than `max_target_tokens` (what `prox_refine` lets the model write) is invalid.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from typing import Literal

import pyarrow as pa
from datatrove.data import Document
from datatrove.utils.batching import batched
from pydantic import Field

from curate.core.atomic import AtomicParquetWriter
from curate.core.stage_api import BuildContext, Column, CurateStep, StrictModel, register_stage

from ..prompts import MAX_CHUNK_TOKENS, MAX_DOC_TOKENS, Prompt, PromptBuilder, load_tokenizer
from ..sft import SFT_FOLDER, SFT_SCHEMA, Invalid, chunk_target, doc_target
from ..teachers import Answer, Label, Teacher, TeacherOptions, make_teacher

COLUMNS = [
    Column("refiner_doc_target", pa.string(), "doc-stage target program (null: no label or invalid)"),
    Column(
        "refiner_chunk_targets", pa.list_(pa.string()), "chunk-stage target programs, one per chunk (null: invalid)"
    ),
    Column("refiner_invalid", pa.int64(), "teacher answers of this document rejected (see OUTPUT/sft reason)"),
]


class RefinerLabelOptions(StrictModel):
    teacher: TeacherOptions = Field(
        description="who writes the programs (kind: boilerplate | heuristics | model | jsonl)"
    )
    doc_stage: bool = Field(True, description="label the doc stage (drop_doc / keep_doc)")
    chunk_stage: bool = Field(True, description="label the chunk stage (remove_lines / normalize)")
    tokenizer: str | None = Field(None, description="tokenizer.json of the student (default: bundled Llama-2)")
    max_doc_tokens: int = Field(MAX_DOC_TOKENS, ge=16, description="as prox_refine: document cut in the doc prompt")
    max_chunk_tokens: int = Field(MAX_CHUNK_TOKENS, ge=16, description="as prox_refine: tokens per chunk prompt")
    max_removed_share: float = Field(
        0.5, gt=0, le=1, description="most of a chunk's non-blank lines a program may remove"
    )
    over_limit: Literal["cap", "drop"] = Field(
        "cap", description="a program removing more: cap its removals or drop it"
    )
    max_target_tokens: int = Field(256, ge=1, description="longer targets are invalid (prox_refine's chunk_max_tokens)")
    batch_size: int = Field(256, ge=1, description="documents per teacher call")
    sft_folder: str = Field(SFT_FOLDER, description="folder under output.path for the SFT Parquet files")


def _unpack(ans: str | Answer) -> tuple[str, str | None, str | None]:
    """(raw answer, program to check, why there is none)."""
    if isinstance(ans, Answer):
        return ans.raw, ans.program, ans.reason
    return ans, ans, None


class _SFTWriter(AtomicParquetWriter):
    """One `NNNNN.parquet` per task, published atomically when the task ends (core/atomic.py)."""

    def __init__(self, folder: str) -> None:
        super().__init__(
            folder,
            output_filename="${rank}.parquet",
            compression="zstd",
            adapter=lambda self, doc: doc.metadata,
            schema=SFT_SCHEMA,
            max_file_size=-1,
        )


class RefinerLabeler(CurateStep):
    name = "refiner label"

    def __init__(self, opts: RefinerLabelOptions, sft_dir: str, label: str | None = None) -> None:
        super().__init__(label)
        self.opts = opts
        self.sft_dir = sft_dir
        self._teacher: Teacher | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_teacher"] = None
        return state

    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            self._teacher = make_teacher(self.opts.teacher)
        return self._teacher

    def builder(self) -> PromptBuilder:
        o = self.opts
        return PromptBuilder(
            load_tokenizer(o.tokenizer),
            max_doc_tokens=o.max_doc_tokens,
            max_chunk_tokens=o.max_chunk_tokens,
            token_ids=False,
        )

    def _row(
        self,
        doc: Document,
        stage: str,
        chunk: int,
        p: Prompt,
        raw: str | None,
        target: str | None,
        reason: str | None,
        capped: bool = False,
    ) -> Document:
        row = {
            "doc_id": doc.id,
            "stage": stage,
            "chunk": chunk,
            "first_line": p.first_line,
            "last_line": p.last_line,
            "prompt": p.text,
            "target": target,
            "raw": raw,
            "teacher": self.teacher.name,
            "valid": target is not None,
            "reason": reason,
            "capped": capped,
        }
        return Document(text=p.text, id=doc.id, metadata=row)

    def _count_tokens(self, target: str) -> int:
        return len(self.builder().tok.encode(target, add_special_tokens=False).ids) + 1  # + EOS

    def label_batch(self, docs: list[Document]) -> list[tuple[Document, list[Document]]]:
        """Per document: the document (with summary columns) and its SFT rows (as Documents for the writer)."""
        o = self.opts
        live = [d for d in docs if d.text.strip()]
        rows: dict[int, list[Document]] = {id(d): [] for d in docs}
        invalid = {id(d): 0 for d in docs}
        b = self.builder()
        for d in docs:
            d.metadata["refiner_doc_target"] = None
            d.metadata["refiner_chunk_targets"] = []
            if not d.text.strip():
                self.stat_update("empty_docs")
        if o.doc_stage and live:
            prompts = b.doc_prompts([d.text for d in live])
            with self.track_time("doc teacher"):
                answers = self.teacher.doc_programs(live, prompts)
            for d, p, ans in zip(live, prompts, answers):
                if ans is None:
                    self.stat_update("doc/no_label")
                    continue
                raw, program, why = _unpack(ans)
                try:
                    if program is None:
                        raise Invalid(why or "no program")
                    target, reason = doc_target(program), None
                    self.stat_update("doc/valid")
                    self.stat_update(f"doc/{target[:-2]}")
                except Invalid as e:
                    target, reason = None, str(e)
                    self._invalid("doc", reason)
                    invalid[id(d)] += 1
                d.metadata["refiner_doc_target"] = target
                rows[id(d)].append(self._row(d, "doc", -1, p, raw, target, reason))
        if o.chunk_stage and live:
            per_doc = b.chunk_prompts([d.text for d in live])
            with self.track_time("chunk teacher"):
                chunk_answers = self.teacher.chunk_programs(live, per_doc)
            for d, ps, raws in zip(live, per_doc, chunk_answers):
                targets = []
                for k, (p, ans) in enumerate(zip(ps, raws)):
                    target, reason, capped = self._chunk(d, p, ans)
                    if ans is None:
                        continue
                    invalid[id(d)] += target is None
                    targets.append(target)
                    rows[id(d)].append(self._row(d, "chunk", k, p, _unpack(ans)[0], target, reason, capped))
                d.metadata["refiner_chunk_targets"] = targets
        for d in docs:
            d.metadata["refiner_invalid"] = invalid[id(d)]
        return [(d, rows[id(d)]) for d in docs]

    def _chunk(self, d: Document, p: Prompt, ans: Label) -> tuple[str | None, str | None, bool]:
        o = self.opts
        if ans is None:
            self.stat_update("chunk/no_label")
            return None, None, False
        _raw, program, why = _unpack(ans)
        try:
            if program is None:
                raise Invalid(why or "no program")
            target, capped = chunk_target(program, p, d.text, o.max_removed_share, o.over_limit)
            if self._count_tokens(target) > o.max_target_tokens:
                raise Invalid(f"target longer than max_target_tokens ({o.max_target_tokens})")
        except Invalid as e:
            self._invalid("chunk", str(e))
            return None, str(e), False
        self.stat_update("chunk/valid")
        self.stat_update("chunk/edited" if target != "keep_chunk()" else "chunk/unchanged")
        if capped:
            self.stat_update("chunk/capped")
        return target, None, capped

    def _invalid(self, stage: str, reason: str) -> None:
        self.stat_update(f"{stage}/invalid")
        kind = reason.split(":")[0].split(" (")[0]
        self.stat_update(f"invalid/{stage}/{kind[:40]}")

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        with _SFTWriter(self.sft_dir) as writer:
            for batch in batched(data, self.opts.batch_size):
                for doc, rows in self.label_batch(list(batch)):
                    for r in rows:
                        writer.write(r, rank)
                    yield doc


@register_stage(
    "refiner_label",
    RefinerLabelOptions,
    "label documents for a student refiner: prox_refine's prompts, a teacher's programs (validated), "
    "SFT rows in OUTPUT/sft/",
    columns=COLUMNS,
)
def build(opts: RefinerLabelOptions, ctx: BuildContext) -> None:
    ctx.add(RefinerLabeler(opts, posixpath.join(ctx.output_dir, opts.sft_folder)))
