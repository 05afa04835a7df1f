"""Model size presets for fresh refiners, and the folder layout `prox_refine` loads as it is.

`0.3b` is the ProX refiners' architecture (Llama-style, 24 layers, hidden 1280, 16 heads of dim 80,
one KV head (multi-query), FFN 2048, vocab 32000, context 2048; ~350M parameters with untied
embeddings). `small` (4 layers, hidden 128) and `tiny` (2 layers, hidden 64) are for CPU runs and
tests. Head dims are >= 32 because vLLM's CPU attention refuses 16.

A refiner folder holds `config.json` + `model.safetensors` (transformers), `generation_config.json`
(greedy, EOS 2), and the tokenizer files (Llama-2 vocabulary from refiners/assets/llama2 unless the
starting checkpoint brought its own), so the vllm and transformers backends load it unchanged.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.core.atomic import write_json_atomic

LLAMA2_DIR = Path(__file__).resolve().parent / "assets" / "llama2"
# chat_template.jinja: a student of a model with another vocabulary is prompted through its base's template
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
)


@dataclass(frozen=True)
class Preset:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int = 32000
    context: int = 2048

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def params(self) -> int:
        """Parameter count (untied input and output embeddings, RMSNorm weights included)."""
        h, f, kv = self.hidden, self.ffn, self.kv_heads * self.head_dim
        per_layer = h * h * 2 + h * kv * 2 + 3 * h * f + 2 * h
        return 2 * self.vocab * h + self.layers * per_layer + h


PRESETS: dict[str, Preset] = {
    "0.3b": Preset(layers=24, hidden=1280, heads=16, kv_heads=1, ffn=2048),
    "small": Preset(layers=4, hidden=128, heads=4, kv_heads=1, ffn=512),
    "tiny": Preset(layers=2, hidden=64, heads=2, kv_heads=1, ffn=128),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}") from None


def llama_config(p: Preset) -> Any:
    from transformers import LlamaConfig

    if p.head_dim < 32:
        raise ValueError(f"head_dim {p.head_dim} < 32: vLLM's CPU attention needs 32, 64, 80, ...")
    return LlamaConfig(
        vocab_size=p.vocab,
        hidden_size=p.hidden,
        intermediate_size=p.ffn,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        head_dim=p.head_dim,
        max_position_embeddings=p.context,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        tie_word_embeddings=False,
    )


def fresh_model(name: str, seed: int = 0) -> Any:
    """A randomly initialised LlamaForCausalLM of a preset (transformers' own init, float32)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model: Any = LlamaForCausalLM(llama_config(preset(name)))
    return model.to(torch.float32)


def copy_tokenizer(src: str | Path | None, out: Path) -> None:
    """The tokenizer files of `src` when it has a tokenizer.json, else the bundled Llama-2 ones."""
    folder = Path(src) if src and (Path(src) / "tokenizer.json").is_file() else LLAMA2_DIR
    for name in TOKENIZER_FILES:
        if (folder / name).is_file() and (folder / name).resolve() != (out / name).resolve():
            shutil.copyfile(folder / name, out / name)


def save_refiner(
    model: Any,
    out: str | Path,
    tokenizer_from: str | Path | None = None,
    dtype: str = "float32",
    info: dict | None = None,
) -> Path:
    """Write a folder `prox_refine` loads with either backend: weights, config, generation config, tokenizer."""

    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.do_sample = False
    model.generation_config.bos_token_id = model.config.bos_token_id
    model.generation_config.eos_token_id = model.config.eos_token_id
    for k in ("temperature", "top_p", "top_k"):  # greedy: sampling knobs would only warn
        setattr(model.generation_config, k, None)
    state_dtype = getattr(torch, dtype)
    if next(model.parameters()).dtype != state_dtype:
        model = model.to(state_dtype)
    model.save_pretrained(out, safe_serialization=True)
    copy_tokenizer(tokenizer_from, out)
    if info is not None:
        write_json_atomic(str(out), "curate_refiner.json", info, default=str)
    return out


def build(name: str, out: str | Path, seed: int = 0) -> Path:
    """A fresh (untrained) refiner folder of a preset: the floor a trained one is compared with."""
    return save_refiner(
        fresh_model(name, seed),
        out,
        info={"preset": name, "seed": seed, "trained": False, "architecture": asdict(preset(name))},
    )
