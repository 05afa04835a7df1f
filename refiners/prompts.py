"""ProX prompts: the Llama-2 chat format, doc-level truncation and chunk-level line packing.

Reproduces GAIR-NLP/ProX `data_gen/tasks/apply_doc_refining.py` and `apply_chunk_refining.py`
(`trunc_text`): see docs/stages/prox.md for what was matched and where we differ.

* Chat format (Llama-2-chat template, the one ProX applies with `apply_chat_template`):
  `<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user.strip()} [/INST]` — the template strips the
  whole user turn, so trailing whitespace of a raw document does not reach the model.
* Token ids: BOS is added once, as an id, in front of the rest of the prompt encoded without
  special tokens. ProX's chunk stage hands the templated *string* (which already starts with
  `<s>`) to vLLM, which adds a second BOS; we never do. Special-token strings inside documents
  (`<s>`, `</s>`) are encoded as plain text, so a document cannot inject control tokens.
* Doc prompt: the raw document, cut to its first `max_doc_tokens` (2000) tokens at a token
  boundary (ProX truncates the whole templated prompt to 2000 tokens, which can cut off
  `[/INST]` itself; we keep the template intact).
* Chunk prompts: lines (`text.split("\\n")`, as ProX) prefixed `[000]`, `[001]`, ... (no space,
  global numbering, `{i:03d}` so line 1000 is `[1000]`), packed greedily in order into chunks of
  at most `max_chunk_tokens` (1500) tokens, counting each numbered line as ProX does:
  `len(tokenizer.encode(line))` *with* its BOS, i.e. line tokens + 1. Each chunk is wrapped
  `[doc]\\n...\\n[/doc]`.
* Over-long single line (more than `max_chunk_tokens` on its own): ProX sends it whole as its
  own chunk, which overflows the 2048-token context and fails the batch. We also give it a chunk
  of its own but cut its text at a token boundary so the chunk fits; the line keeps its number,
  so `remove_lines` on it still works (a `normalize` can only see the part shown). The chunk's
  `truncated_lines` lists such lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
BOS = "<s>"
LLAMA2_TOKENIZER = Path(__file__).resolve().parent / "assets" / "llama2" / "tokenizer.json"
MAX_DOC_TOKENS = 2000
MAX_CHUNK_TOKENS = 1500
LINE_DIGITS = 3


def chat_prompt(user: str, system: str = SYSTEM_PROMPT) -> str:
    """The Llama-2-chat template for one system + one user turn, with the generation prompt."""
    content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
    return f"{BOS}[INST] {content.strip()} [/INST]"


def chat_user(prompt: str) -> tuple[str, str]:
    """(system, user turn) of a `chat_prompt` string: what a chat template carries for another vocabulary."""
    head, tail = f"{BOS}[INST] <<SYS>>\n", " [/INST]"
    if not (prompt.startswith(head) and prompt.endswith(tail)):
        raise ValueError("not a Llama-2 refiner prompt (<s>[INST] <<SYS>> ... [/INST])")
    system, _, user = prompt[len(head) : -len(tail)].partition("\n<</SYS>>")
    return system, user.removeprefix("\n\n")


def number_line(index: int, line: str, digits: int = LINE_DIGITS) -> str:
    return f"[{index:0{digits}d}]{line}"


def wrap_doc(body: str) -> str:
    return f"[doc]\n{body}\n[/doc]"


@lru_cache(maxsize=8)
def load_tokenizer(path: str | None = None) -> Tokenizer:
    """A fast tokenizer from a tokenizer.json (default: the bundled Llama-2 one, ProX's vocabulary).

    `encode_special_tokens` makes `<s>` typed inside a document plain text, not a control token.
    """
    tok = Tokenizer.from_file(str(path or LLAMA2_TOKENIZER))
    tok.encode_special_tokens = True
    return tok


def tokenizer_for_model(model: str | None) -> Tokenizer:
    """The model folder's tokenizer.json when it has one, else the bundled Llama-2 tokenizer."""
    if model and (Path(model) / "tokenizer.json").is_file():
        return load_tokenizer(str(Path(model) / "tokenizer.json"))
    return load_tokenizer(None)


class TurnTemplate(Protocol):
    """A chat template cut around the user turn (refiners/chat.py `ChatTemplate`)."""

    def render(self, user: str) -> str: ...

    def ids_batch(self, users: list[str]) -> list[list[int]]: ...


@dataclass
class Prompt:
    """One model input: the exact prompt string and its token ids (BOS once, first)."""

    kind: str  # "doc" | "chunk"
    text: str
    token_ids: list[int]
    doc_index: int = 0
    first_line: int = 0
    last_line: int = -1
    truncated_lines: list[int] = field(default_factory=list)


class PromptBuilder:
    """Builds ProX doc and chunk prompts for a batch of documents with one batched tokenizer call."""

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        max_doc_tokens: int = MAX_DOC_TOKENS,
        max_chunk_tokens: int = MAX_CHUNK_TOKENS,
        system: str = SYSTEM_PROMPT,
        token_ids: bool = True,
        template: TurnTemplate | None = None,
    ) -> None:
        self.tok = tokenizer or load_tokenizer(None)
        self.token_ids = token_ids  # False: prompt strings only (a backend without a model reads text, not ids)
        self.max_doc_tokens = max_doc_tokens
        self.max_chunk_tokens = max_chunk_tokens
        self.system = system
        # None: ProX's Llama-2 prompt; else the model's chat template (refiners/chat.py, checked before the run)
        self.template = template
        bos = self.tok.token_to_id(BOS)
        if bos is None and template is None:
            raise ValueError("tokenizer has no <s> token; ProX prompts need the Llama-2 vocabulary")
        self.bos_id = bos

    def _prompts(self, users: list[str]) -> tuple[list[str], list[list[int]]]:
        """Prompt strings and their token ids for these user turns."""
        if self.template is not None:
            t = self.template
            ids = t.ids_batch(users) if self.token_ids else [[] for _ in users]
            return [t.render(u) for u in users], ids
        strings = [chat_prompt(u, self.system) for u in users]
        return strings, self._ids_batch(strings)

    # -- token ids of a finished prompt string --------------------------------------------------
    def _ids_batch(self, prompts: list[str]) -> list[list[int]]:
        if not self.token_ids:
            return [[] for _ in prompts]
        # every prompt starts with the literal "<s>"; add BOS as an id and encode the rest as text
        assert all(p.startswith(BOS) for p in prompts)
        assert self.bos_id is not None  # checked in __init__ for the Llama-2 prompt
        encs = self.tok.encode_batch([p[len(BOS) :] for p in prompts], add_special_tokens=False)
        bos = self.bos_id
        return [[bos, *e.ids] for e in encs]

    # -- doc stage -------------------------------------------------------------------------------
    def truncate_doc(self, texts: Sequence[str]) -> list[str]:
        """Each text cut to its first `max_doc_tokens` tokens (at a token boundary)."""
        # every token covers at least one UTF-8 byte (the prepended "▁" merges into the first), so a
        # text of < max_doc_tokens bytes cannot be too long: only the others are tokenized
        long = [
            i for i, t in enumerate(texts) if len(t) >= self.max_doc_tokens and len(t.encode()) >= self.max_doc_tokens
        ]
        out = list(texts)
        encs = self.tok.encode_batch([texts[i] for i in long], add_special_tokens=False) if long else []
        for i, enc in zip(long, encs):
            if len(enc.ids) > self.max_doc_tokens:
                out[i] = texts[i][: enc.offsets[self.max_doc_tokens][0]]
        return out

    def doc_prompts(self, texts: Sequence[str]) -> list[Prompt]:
        strings, ids = self._prompts(self.truncate_doc(texts))
        return [Prompt("doc", s, i_, doc_index=i) for i, (s, i_) in enumerate(zip(strings, ids))]

    # -- chunk stage -----------------------------------------------------------------------------
    def chunk_bodies(self, texts: Sequence[str]) -> list[list[tuple[str, int, int, list[int]]]]:
        """Per document: (numbered chunk body, first line, last line, truncated line numbers)."""
        per_doc_lines = [t.split("\n") for t in texts]
        numbered = [number_line(i, line) for lines in per_doc_lines for i, line in enumerate(lines)]
        # ProX counts `len(tokenizer.encode(numbered_line))`, which includes the BOS: ids + 1
        counts = [len(e.ids) + 1 for e in self.tok.encode_batch(numbered, add_special_tokens=False)] if numbered else []
        out: list[list[tuple[str, int, int, list[int]]]] = []
        pos = 0
        limit = self.max_chunk_tokens
        for lines in per_doc_lines:
            chunks: list[tuple[str, int, int, list[int]]] = []
            cur: list[str] = []
            cur_first, cur_tokens = 0, 0
            for i in range(len(lines)):
                line, n = numbered[pos + i], counts[pos + i]
                if cur_tokens + n <= limit:
                    if not cur:
                        cur_first = i
                    cur.append(line)
                    cur_tokens += n
                    continue
                if cur:
                    chunks.append(("\n".join(cur), cur_first, i - 1, []))
                if n > limit:
                    chunks.append((self._cut_line(i, lines[i]), i, i, [i]))
                    cur, cur_tokens = [], 0
                else:
                    cur, cur_first, cur_tokens = [line], i, n
            if cur:
                chunks.append(("\n".join(cur), cur_first, len(lines) - 1, []))
            out.append(chunks)
            pos += len(lines)
        return out

    def _cut_line(self, index: int, line: str) -> str:
        """An over-long line's numbered text cut at a token boundary so that it fits one chunk."""
        prefix = number_line(index, "")
        enc = self.tok.encode(prefix + line, add_special_tokens=False)
        keep = self.max_chunk_tokens - 1  # the BOS ProX counts per line
        cut = enc.offsets[keep][0] if len(enc.ids) > keep else len(prefix) + len(line)
        return (prefix + line)[:cut]

    def chunk_prompts(self, texts: Sequence[str]) -> list[list[Prompt]]:
        bodies = self.chunk_bodies(texts)
        strings, ids = self._prompts([wrap_doc(b) for chunks in bodies for b, *_ in chunks])
        out: list[list[Prompt]] = []
        k = 0
        for d, chunks in enumerate(bodies):
            doc_prompts = []
            for _body, first, last, trunc in chunks:
                doc_prompts.append(
                    Prompt(
                        "chunk",
                        strings[k],
                        ids[k],
                        doc_index=d,
                        first_line=first,
                        last_line=last,
                        truncated_lines=trunc,
                    )
                )
                k += 1
            out.append(doc_prompts)
        return out
