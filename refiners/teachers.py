"""Teachers for `refiner_label`: who writes the target programs a student refiner learns from.

Every teacher answers the exact prompts `prox_refine` builds (refiners/prompts.py) and returns raw
program text per doc prompt and per chunk prompt; `None` means "no label for this one" (e.g. a
document missing from the human-label file). The label stage parses and validates every answer.

* `boilerplate`: the deterministic generator of the `boilerplate` backend (refiners/backends/boilerplate.py),
  on the prompts themselves.
* `heuristics`: chunk stage from line-level rules of the C4 / Gopher / FineWeb kind (datatrove's
  C4 constants where it has them), merged into `remove_lines` runs; doc stage from human keep/drop
  labels (a metadata field of the input, or a labelled jsonl looked up by text).
* `model`: an instruction-tuned model through the vllm or transformers backend, driven by the
  annotation prompts in refiners/assets/annotation_prompts/ (editable copies can be passed by
  path). Doc stage: the model writes an educational and a format score (0-5) and the configured
  rule (ProX: drop when edu < 2; keep when edu >= 3, or edu == 2 and format >= 4) turns them into
  `drop_doc()` / `keep_doc()`. Chunk stage: one few-shot prompt per template (navigation, URLs,
  footer), the programs merged, as in ProX's recipe.
* `jsonl`: existing (text, program) pairs: the program fields of the input records themselves
  (a jsonl of pairs read as the input, or a `prox_refine` output read back as Parquet).

Document-level chunk programs (heuristics, pairs) are split over the document's chunks by line
range: a `remove_lines` goes to every chunk it overlaps (clipped to it), a `normalize` to every
chunk whose text contains its source.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from datatrove.data import Document
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from curate.core.errors import ConfigError
from curate.core.options import StrictModel

from .backends.boilerplate import chunk_program as boilerplate_chunk_program
from .backends.boilerplate import doc_program as boilerplate_doc_program
from .backends.boilerplate import is_boilerplate
from .program import CHUNK_CALLS, Call, parse_program
from .prompts import Prompt, chat_prompt, tokenizer_for_model

PROMPTS_DIR = Path(__file__).resolve().parent / "assets" / "annotation_prompts"
DEFAULT_CHUNK_TEMPLATES = ("chunk_navigation.txt", "chunk_urls.txt", "chunk_footer.txt")
LINE_RULES = (
    "boilerplate",
    "javascript",
    "policy",
    "too_long_word",
    "short_no_punct",
    "ellipsis",
    "bullet_short",
    "duplicate",
)


class TeacherOptions(StrictModel):
    kind: Literal["boilerplate", "heuristics", "model", "jsonl"] = Field(
        description="boilerplate (the boilerplate backend's generator) | heuristics (line rules + human doc labels) "
        "| model (instruction LM) | jsonl (given pairs)"
    )
    # -- heuristics ------------------------------------------------------------------------------
    line_rules: list[str] = Field(
        list(LINE_RULES), description=f"heuristics: line rules used ({', '.join(LINE_RULES)})"
    )
    short_words: int = Field(3, ge=1, description="heuristics short_no_punct: fewer words than this (C4: 3)")
    doc_label_field: str | None = Field("label", description="heuristics: input field with a human keep/drop label")
    doc_labels: str | None = Field(
        None, description="heuristics: labelled jsonl (text + label field) looked up by text"
    )
    drop_values: list[str] = Field(["0"], description="heuristics: label values meaning drop (DCLM: 0 = low quality)")
    # -- model -----------------------------------------------------------------------------------
    backend: Literal["vllm", "transformers"] = Field("vllm", description="model: generation backend")
    model: str | None = Field(None, description="model: local folder (or hub id) of the instruction model")
    chat_format: Literal["llama2", "model"] = Field(
        "llama2", description="model: llama2 ([INST] template) or the model tokenizer's own chat template"
    )
    doc_template: str | None = Field(
        None, description="model: doc annotation prompt file ({document}); default bundled"
    )
    chunk_templates: list[str] | None = Field(
        None, description="model: chunk prompt files ({chunk}); default the bundled navigation, URL and footer prompts"
    )
    max_document_tokens: int = Field(
        2000, ge=16, description="model: document cut to this many tokens in the doc prompt"
    )
    doc_new_tokens: int = Field(256, ge=1, description="model: tokens generated for the scores")
    chunk_new_tokens: int = Field(256, ge=1, description="model: tokens generated per chunk and template")
    edu_drop_below: int = Field(2, description="model: drop when the educational score is below this (ProX: 2)")
    edu_keep_from: int = Field(3, description="model: keep when the educational score is at least this (ProX: 3)")
    format_keep_from: int = Field(
        4, description="model: in between, keep when the format score is at least this (ProX: 4)"
    )
    dtype: str = Field("bfloat16", description="model: weights dtype")
    max_model_len: int = Field(8192, ge=64, description="model: context length")
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1, description="model/vllm: share of GPU memory for the engine")
    tensor_parallel_size: int = Field(1, ge=1, description="model/vllm: GPUs per engine")
    enforce_eager: bool = Field(False, description="model/vllm: no CUDA graphs (CPU / debugging)")
    device: str = Field("auto", description="model/transformers: cpu | cuda | auto")
    generate_batch_size: int = Field(16, ge=1, description="model/transformers: prompts per generate call")
    # -- jsonl -----------------------------------------------------------------------------------
    doc_program_field: str = Field(
        "doc_program", description="jsonl: input field with the doc program (prox_refine output: prox_doc_program)"
    )
    chunk_program_field: str = Field(
        "chunk_program",
        description="jsonl: input field with the chunk program: one "
        "string for the document, or a list, one per chunk "
        "(prox_refine output: prox_chunk_programs)",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _renamed_kind(cls, value: Any) -> Any:
        if value == "rules":  # the teacher of the generator that is now the `boilerplate` backend
            raise PydanticCustomError(
                "renamed", "teacher 'rules' is now called 'boilerplate' (did you mean 'boilerplate'?)"
            )
        return value


@dataclass
class Answer:
    """A teacher answer whose raw text is not itself the program (model scores, merged templates)."""

    raw: str
    program: str | None  # None: no program could be made from the answer
    reason: str | None = None


Label = str | Answer | None  # raw program text, an Answer, or None (no label for this prompt)


class Teacher(Protocol):
    name: str

    def doc_programs(self, docs: Sequence[Document], prompts: Sequence[Prompt]) -> list[Label]: ...

    def chunk_programs(self, docs: Sequence[Document], prompts: Sequence[Sequence[Prompt]]) -> list[list[Label]]: ...


# ---------------------------------------------------------------------------- splitting document programs


def chunk_lines(prompt: Prompt, text: str) -> list[str]:
    """The original lines a chunk prompt shows (first_line..last_line of the document)."""
    return text.split("\n")[prompt.first_line : prompt.last_line + 1]


def removal_runs(removed: Sequence[int], lines: dict[int, str] | None = None) -> list[tuple[int, int]]:
    """Sorted line numbers -> inclusive runs; blank lines between two removed lines join the run."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(removed)):
        if runs and (
            i == runs[-1][1] + 1
            or (lines is not None and all(not lines.get(j, "x").strip() for j in range(runs[-1][1] + 1, i)))
        ):
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def program_text(normalizes: Sequence[tuple[str, str]], runs: Sequence[tuple[int, int]]) -> str:
    """Canonical chunk program: normalizations (in order), then removals in line order; keep_chunk() if none."""
    calls = [Call("normalize", (("source_str", s), ("target_str", t))).text for s, t in normalizes]
    calls += [Call("remove_lines", (("line_start", a), ("line_end", b))).text for a, b in runs]
    return "\n".join(calls) if calls else "keep_chunk()"


def split_document_program(program: str, text: str, prompts: Sequence[Prompt]) -> list[str | None]:
    """A program written for the whole document -> one program per chunk (None when it does not parse)."""
    prog = parse_program(program, CHUNK_CALLS)
    n = text.count("\n") + 1
    if (
        prog.errors
        or prog.fatal
        or any(c.name == "remove_lines" and not 0 <= c.arg("line_start") <= c.arg("line_end") < n for c in prog.calls)
    ):
        return [program] * len(prompts)  # invalid as a whole: each chunk gets it and is rejected with the reason
    out: list[str | None] = []
    for p in prompts:
        body = "\n".join(chunk_lines(p, text))
        norms = [
            (c.arg("source_str"), c.arg("target_str"))
            for c in prog.calls
            if c.name == "normalize" and c.arg("source_str") and c.arg("source_str") in body
        ]
        removed = [
            i
            for c in prog.calls
            if c.name == "remove_lines"
            for i in range(max(c.arg("line_start"), p.first_line), min(c.arg("line_end"), p.last_line) + 1)
        ]
        out.append(program_text(norms, removal_runs(removed)))
    return out


# ---------------------------------------------------------------------------- boilerplate


class BoilerplateTeacher:
    name = "boilerplate"

    def doc_programs(self, docs: Sequence[Document], prompts: Sequence[Prompt]) -> list[Label]:
        return [boilerplate_doc_program(d.text) for d in docs]

    def chunk_programs(self, docs: Sequence[Document], prompts: Sequence[Sequence[Prompt]]) -> list[list[Label]]:
        out: list[list[Label]] = []
        for d, ps in zip(docs, prompts):
            lines = d.text.split("\n")
            out.append(
                [boilerplate_chunk_program([(i, lines[i]) for i in range(p.first_line, p.last_line + 1)]) for p in ps]
            )
        return out


# ---------------------------------------------------------------------------- heuristics

_BULLETS = ("•", "●", "○", "▪", "■", "◦", "‣", "-", "*", "–", "·")


def _line_rules(opts: TeacherOptions) -> list[tuple[str, Any]]:
    short = opts.short_words

    def no_punct(s: str) -> bool:  # C4: a line must end in terminal punctuation, not in an ellipsis
        s = CITATION_REGEX.sub("", s)
        return not s.endswith(END_PUNCTUATION) or s.endswith(ELLIPSIS)

    table = {
        "boilerplate": lambda s, w, low: is_boilerplate(s),
        "javascript": lambda s, w, low: "javascript" in low and len(w) <= 40,  # C4 line rule
        "policy": lambda s, w, low: len(w) <= 40 and any(p in low for p in POLICY_SUBSTRINGS),  # C4 line rule
        "too_long_word": lambda s, w, low: any(len(x) > 1000 for x in w),  # C4 max_word_length
        "short_no_punct": lambda s, w, low: len(w) < short and no_punct(s),  # C4 min_words_per_line + punctuation
        "ellipsis": lambda s, w, low: (s.endswith(ELLIPSIS) or s.endswith("…")) and len(w) <= 30,  # Gopher teaser
        "bullet_short": lambda s, w, low: s.startswith(_BULLETS) and len(w) <= 4 and no_punct(s),  # Gopher bullets
    }
    unknown = [r for r in opts.line_rules if r not in table and r != "duplicate"]
    if unknown:
        raise ConfigError(f"teacher.line_rules: unknown rule(s) {', '.join(unknown)}; rules: {', '.join(LINE_RULES)}")
    return [(r, table[r]) for r in opts.line_rules if r in table]


class HeuristicsTeacher:
    name = "heuristics"

    def __init__(self, opts: TeacherOptions) -> None:
        self.opts = opts
        self.rules = _line_rules(opts)
        self.duplicates = "duplicate" in opts.line_rules
        self.drop_values = {str(v) for v in opts.drop_values}
        self._labels: dict[str, str] | None = None

    # -- doc stage: human labels ---------------------------------------------------------------------
    def _label_file(self) -> dict[str, str]:
        if self._labels is None:
            self._labels = {}
            if self.opts.doc_labels:
                path = Path(self.opts.doc_labels)
                if not path.is_file():
                    raise ConfigError(f"teacher.doc_labels: {path} does not exist")
                field = self.opts.doc_label_field or "label"
                for n, line in enumerate(path.open(encoding="utf-8")):
                    if line.strip():
                        rec = json.loads(line)
                        if "text" not in rec or field not in rec:
                            raise ConfigError(f"{path} record {n}: needs 'text' and {field!r} fields")
                        self._labels[_text_key(rec["text"])] = str(rec[field])
        return self._labels

    def doc_label(self, doc: Document) -> str | None:
        field = self.opts.doc_label_field
        if field and doc.metadata.get(field) is not None:
            value = doc.metadata[field]
        else:
            value = self._label_file().get(_text_key(doc.text))
        if value is None:
            return None
        return "drop_doc()" if str(value) in self.drop_values else "keep_doc()"

    def doc_programs(self, docs: Sequence[Document], prompts: Sequence[Prompt]) -> list[Label]:
        return [self.doc_label(d) for d in docs]

    # -- chunk stage: line rules -----------------------------------------------------------------------
    def removed_lines(self, text: str) -> list[int]:
        out, seen = [], set()
        for i, line in enumerate(text.split("\n")):
            s = line.strip()
            if not s:
                continue
            w = s.split()
            low = s.lower()
            if any(rule(s, w, low) for _, rule in self.rules):
                out.append(i)
            elif self.duplicates and s in seen and len(w) <= 10:
                out.append(i)  # FineWeb's duplicate-line signal: a short line repeated on the page (menus, widgets)
            seen.add(s)
        return out

    def chunk_programs(self, docs: Sequence[Document], prompts: Sequence[Sequence[Prompt]]) -> list[list[Label]]:
        out: list[list[Label]] = []
        for d, ps in zip(docs, prompts):
            lines = d.text.split("\n")
            removed = self.removed_lines(d.text)
            per: list[Label] = []
            for p in ps:
                mine = [i for i in removed if p.first_line <= i <= p.last_line]
                shown = {i: lines[i] for i in range(p.first_line, p.last_line + 1)}
                per.append(program_text([], removal_runs(mine, shown)))
            out.append(per)
        return out


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------------------- existing pairs


class PairsTeacher:
    name = "jsonl"

    def __init__(self, opts: TeacherOptions) -> None:
        self.opts = opts

    def doc_programs(self, docs: Sequence[Document], prompts: Sequence[Prompt]) -> list[Label]:
        return [_as_text(d.metadata.get(self.opts.doc_program_field)) for d in docs]

    def chunk_programs(self, docs: Sequence[Document], prompts: Sequence[Sequence[Prompt]]) -> list[list[Label]]:
        out: list[list[Label]] = []
        for d, ps in zip(docs, prompts):
            value = d.metadata.get(self.opts.chunk_program_field)
            if value is None:
                out.append([None] * len(ps))
            elif isinstance(value, (list, tuple)) and len(value) == len(ps):
                out.append([_as_text(v) for v in value])  # one per chunk, same chunking (e.g. a prox_refine output)
            else:
                joined = "\n".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
                out.append([*split_document_program(joined, d.text, ps)])
        return out


def _as_text(v: Any) -> str | None:
    return None if v is None else str(v)


# ---------------------------------------------------------------------------- instruction model

_EDU = re.compile(r"educational score:\s*\**\s*(\d+)", re.I)
_FMT = re.compile(r"format score:\s*\**\s*(\d+)", re.I)


def doc_decision_from_scores(output: str, opts: TeacherOptions) -> str | None:
    """The model's score text -> drop_doc() / keep_doc() by the configured rule; None when no edu score."""
    edu = _EDU.findall(output)
    if not edu:
        return None
    e = int(edu[-1])
    fmt = _FMT.findall(output)
    f = int(fmt[-1]) if fmt else 0
    if e < opts.edu_drop_below:
        return "drop_doc()"
    if e >= opts.edu_keep_from or f >= opts.format_keep_from:
        return "keep_doc()"
    return "drop_doc()"


def merge_programs(outputs: Sequence[str]) -> Answer:
    """Several templates' programs for one chunk -> one: the union of removals, normalizations deduplicated.

    One template answer that does not parse makes the merged answer invalid (counted by the label
    stage) rather than silently losing that template's opinion.
    """
    norms: list[tuple[str, str]] = []
    removed: list[int] = []
    raw = "\n----\n".join(outputs)
    for k, out in enumerate(outputs):
        prog = parse_program(out, CHUNK_CALLS)
        if prog.errors or prog.fatal:
            return Answer(raw, None, f"parse: template {k}: {prog.errors[0]}")
        for c in prog.calls:
            if c.name == "normalize" and (c.arg("source_str"), c.arg("target_str")) not in norms:
                norms.append((c.arg("source_str"), c.arg("target_str")))
            elif c.name == "remove_lines":
                removed.extend(range(c.arg("line_start"), c.arg("line_end") + 1))
    return Answer(raw, program_text(norms, removal_runs(removed)))


def _template(path: str | None, default: str, placeholder: str) -> str:
    p = Path(path) if path else PROMPTS_DIR / default
    if not p.is_file():
        raise ConfigError(f"teacher template {p} does not exist (copy one from {PROMPTS_DIR} and edit it)")
    text = p.read_text(encoding="utf-8")
    if placeholder not in text:
        raise ConfigError(f"teacher template {p}: no {placeholder} placeholder; add it where the text goes")
    return text


class ModelTeacher:
    name = "model"

    def __init__(self, opts: TeacherOptions) -> None:
        if not opts.model:
            raise ConfigError("teacher.model: required for kind: model (a local model folder)")
        self.opts = opts
        self.doc_template = _template(opts.doc_template, "doc.txt", "{document}")
        self.chunk_templates = (
            [_template(t, "", "{chunk}") for t in opts.chunk_templates]
            if opts.chunk_templates
            else [_template(None, t, "{chunk}") for t in DEFAULT_CHUNK_TEMPLATES]
        )
        self._backend: Any = None
        self._hf_tok: Any = None

    def backend(self) -> Any:
        if self._backend is None:
            from .backends.base import get_backend

            spec = get_backend(self.opts.backend)
            # the teacher's keys of the same names as the backend's (dtype, max_model_len, device, ...)
            given = {k: getattr(self.opts, k) for k in spec.options.model_fields if k in TeacherOptions.model_fields}
            self._backend = spec.create(self.opts.model, spec.options.model_validate(given))
        return self._backend

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_backend"] = state["_hf_tok"] = None  # engines are built in each worker
        return state

    def prompts(self, users: Sequence[str], kind: str) -> list[Prompt]:
        """Teacher prompts in the teacher's own chat format, as token ids for the backend."""
        if self.opts.chat_format == "model":
            if self._hf_tok is None:
                from transformers import AutoTokenizer

                self._hf_tok = AutoTokenizer.from_pretrained(self.opts.model)
            out = []
            for u in users:
                ids = self._hf_tok.apply_chat_template(
                    [{"role": "user", "content": u}], add_generation_prompt=True, tokenize=True
                )
                ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
                out.append(Prompt(kind, self._hf_tok.decode(ids), ids))
            return out
        tok = tokenizer_for_model(self.opts.model)
        bos = tok.token_to_id("<s>")
        texts = [chat_prompt(u) for u in users]
        encs = tok.encode_batch([t[len("<s>") :] for t in texts], add_special_tokens=False) if texts else []
        return [Prompt(kind, t, ([bos] if bos is not None else []) + e.ids) for t, e in zip(texts, encs)]

    def _cut(self, texts: Sequence[str]) -> list[str]:
        tok = tokenizer_for_model(self.opts.model)
        out = []
        for t, e in zip(texts, tok.encode_batch(list(texts), add_special_tokens=False)):
            n = self.opts.max_document_tokens
            out.append(t[: e.offsets[n][0]] if len(e.ids) > n else t)
        return out

    def doc_programs(self, docs: Sequence[Document], prompts: Sequence[Prompt]) -> list[Label]:
        users = [self.doc_template.replace("{document}", t) for t in self._cut([d.text for d in docs])]
        gens = self.backend().generate(self.prompts(users, "doc"), self.opts.doc_new_tokens)
        out: list[Label] = []
        for g in gens:
            decision = doc_decision_from_scores(g.text, self.opts)
            out.append(
                Answer(g.text, decision, None if decision else "no score: the answer has no 'Educational score: N'")
            )
        return out

    def chunk_programs(self, docs: Sequence[Document], prompts: Sequence[Sequence[Prompt]]) -> list[list[Label]]:
        flat = [p for ps in prompts for p in ps]
        bodies = [_chunk_body(p) for p in flat]
        per_template = []
        for tpl in self.chunk_templates:
            gens = self.backend().generate(
                self.prompts([tpl.replace("{chunk}", b) for b in bodies], "chunk"), self.opts.chunk_new_tokens
            )
            per_template.append([g.text for g in gens])
        merged = [merge_programs([outs[k] for outs in per_template]) for k in range(len(flat))]
        out: list[list[Label]] = []
        k = 0
        for ps in prompts:
            out.append(list(merged[k : k + len(ps)]))
            k += len(ps)
        return out


def _chunk_body(p: Prompt) -> str:
    """The `[doc]...[/doc]` block of a student chunk prompt: exactly the numbered lines the student sees."""
    start = p.text.index("<</SYS>>\n\n") + len("<</SYS>>\n\n")
    return p.text[start : p.text.rindex(" [/INST]")]


def make_teacher(opts: TeacherOptions) -> Teacher:
    if opts.kind == "boilerplate":
        return BoilerplateTeacher()
    if opts.kind == "heuristics":
        return HeuristicsTeacher(opts)
    if opts.kind == "jsonl":
        return PairsTeacher(opts)
    return ModelTeacher(opts)
