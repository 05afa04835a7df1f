"""Which prompt a refiner model reads: ProX's exact Llama-2 `[INST]` string, or its own chat template.

The released ProX refiners (and students trained from a Llama-2-vocabulary preset) were trained on
the Llama-2 prompt of prompts.py, byte for byte: a model whose vocabulary has `<s>` gets it. Any other
causal LM gets the same instruction (system line + document) through a chat template: the one the
config names (`chat_template:` a Jinja file), else the model folder's own. A model with neither
cannot be prompted; `problem()` says so before a run starts, never inside a task.

The template is rendered once per model with a sentinel as the user turn and cut around it. The
prefix and suffix (the template's control tokens) are encoded once with special tokens parsed; each
document is encoded with special tokens as plain text, so a document still cannot inject a control
token, and a batch costs one tokenizer call over the documents alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .prompts import BOS, SYSTEM_PROMPT, chat_user, load_tokenizer

SENTINEL = "\x00CURATE_USER_TURN\x00"
ANSWER = "\x00CURATE_ANSWER\x00"


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template cut around the user turn: prompt = prefix + user + suffix."""

    prefix: str
    suffix: str
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    end_ids: tuple[int, ...]  # what ends the assistant turn (appended to training targets)
    tokenizer_file: str

    def render(self, user: str) -> str:
        return f"{self.prefix}{user.strip()}{self.suffix}"

    def ids_batch(self, users: list[str]) -> list[list[int]]:
        if not users:
            return []
        tok = load_tokenizer(self.tokenizer_file)
        encs = tok.encode_batch([u.strip() for u in users], add_special_tokens=False)
        return [[*self.prefix_ids, *e.ids, *self.suffix_ids] for e in encs]

    @property
    def overhead(self) -> int:
        """Prompt tokens besides the user turn's own."""
        return len(self.prefix_ids) + len(self.suffix_ids)


def has_llama2_vocabulary(tokenizer_file: str | None) -> bool:
    return load_tokenizer(tokenizer_file).token_to_id(BOS) is not None


def own_template(model: str) -> str | None:
    """The chat template a model folder ships (chat_template.jinja or tokenizer_config.json), if any."""
    p = Path(model)
    if (p / "chat_template.jinja").is_file():
        return (p / "chat_template.jinja").read_text()
    cfg = p / "tokenizer_config.json"
    if cfg.is_file():
        t = json.loads(cfg.read_text()).get("chat_template")
        if isinstance(t, str):
            return t
        if isinstance(t, list):  # named templates: the default one
            named = {x.get("name"): x.get("template") for x in t if isinstance(x, dict)}
            return named.get("default")
    return None


def wants_template(tokenizer_file: str | None, template_file: str | None) -> bool:
    """True when prompts go through a chat template: one is named, or the vocabulary is not Llama-2's."""
    return bool(template_file) or not has_llama2_vocabulary(tokenizer_file)


@lru_cache(maxsize=8)
def load_template(model: str, template_file: str | None = None, system: str = SYSTEM_PROMPT) -> ChatTemplate:
    """The chat template of `model` (or the named file), cut around the user turn. ValueError: unusable."""
    if not (Path(model) / "tokenizer.json").is_file():
        raise ValueError(f"{model} has no tokenizer.json")
    source = Path(template_file).read_text() if template_file else own_template(model)
    if source is None:
        raise ValueError(
            f"{model}: its vocabulary has no {BOS} (not ProX's Llama-2 prompt) and it ships no chat template; "
            "name one with `chat_template: FILE`"
        )
    from transformers import AutoTokenizer

    hf: Any = AutoTokenizer.from_pretrained(model)
    prompt = _render(hf, source, system, SENTINEL, generation=True)
    if prompt.count(SENTINEL) != 1:
        raise ValueError(f"{model}: the chat template does not show the user turn as given; it cannot carry a document")
    prefix, suffix = prompt.split(SENTINEL)
    turn = _render(hf, source, system, "x", generation=False, answer=ANSWER)
    after = turn.split(ANSWER, 1)[1] if ANSWER in turn else ""
    end = hf.encode(after, add_special_tokens=False) if after else []
    eos = hf.eos_token_id
    if eos is not None and eos in end:
        end = end[: end.index(eos) + 1]
    elif eos is not None:
        end = [eos]
    return ChatTemplate(
        prefix,
        suffix,
        tuple(hf.encode(prefix, add_special_tokens=False)),
        tuple(hf.encode(suffix, add_special_tokens=False)),
        tuple(end),
        str(Path(model) / "tokenizer.json"),
    )


def _render(hf: Any, source: str, system: str, user: str, generation: bool, answer: str | None = None) -> str:
    turns = [{"role": "user", "content": user}]
    if answer is not None:
        turns.append({"role": "assistant", "content": answer})
    try:
        out = hf.apply_chat_template(
            [{"role": "system", "content": system}, *turns],
            chat_template=source,
            tokenize=False,
            add_generation_prompt=generation,
        )
    except Exception:  # noqa: BLE001  # templates without a system role: the system line opens the user turn
        turns[0] = {"role": "user", "content": f"{system}\n\n{user}"}
        out = hf.apply_chat_template(turns, chat_template=source, tokenize=False, add_generation_prompt=generation)
    return str(out)


def max_position_embeddings(model: str) -> int | None:
    cfg = Path(model) / "config.json"
    if not cfg.is_file():
        return None
    c = json.loads(cfg.read_text())
    c = c.get("text_config", c)
    n = c.get("max_position_embeddings")
    return int(n) if isinstance(n, int) else None


def problem(
    model: str,
    tokenizer_file: str | None,
    template_file: str | None,
    max_model_len: int,
    prompt_tokens: int,
    max_tokens: int,
) -> str | None:
    """Why `model` cannot refine with these settings (None: it can). `prompt_tokens`: the longest user turn."""
    window = max_position_embeddings(model)
    if window is not None and max_model_len > window:
        return f"max_model_len {max_model_len} is longer than the model's context ({window} positions)"
    if not wants_template(tokenizer_file, template_file):
        return None
    try:
        t = load_template(model, template_file)
    except (ValueError, OSError) as e:
        return str(e)
    need = t.overhead + prompt_tokens + max_tokens
    if need > max_model_len:
        return (
            f"its prompts need up to {need} tokens ({t.overhead} of chat template + {prompt_tokens} of document "
            f"+ {max_tokens} generated) but max_model_len is {max_model_len}"
        )
    return None


def ids_for_model(model: str, prompts: list[str]) -> list[list[int]]:
    """Token ids of Llama-2 refiner prompt strings (SFT rows) as `prox_refine` sends them to `model`:
    the string itself for a Llama-2 vocabulary (BOS once, as an id), else its turns through the model's
    chat template. ValueError when neither works."""
    tok_file = str(Path(model) / "tokenizer.json") if (Path(model) / "tokenizer.json").is_file() else None
    if not wants_template(tok_file, None):
        tok = load_tokenizer(tok_file)
        bos = tok.token_to_id(BOS)
        assert bos is not None  # a Llama-2 vocabulary has it (wants_template is False)
        encs = tok.encode_batch([p[len(BOS) :] for p in prompts], add_special_tokens=False) if prompts else []
        return [[bos, *e.ids] for e in encs]
    out: list[list[int]] = [[] for _ in prompts]
    turns = [chat_user(p) for p in prompts]
    for system in dict.fromkeys(s for s, _ in turns):
        t = load_template(model, None, system)
        idx = [i for i, (s, _) in enumerate(turns) if s == system]
        for i, ids in zip(idx, t.ids_batch([turns[i][1] for i in idx])):
            out[i] = ids
    return out
