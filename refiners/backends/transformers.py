"""The `transformers` backend: batched greedy `generate` with left padding, on CPU or GPU.

Prompts are sorted by length before batching (less padding), run `generate_batch_size` at a time,
and returned in the original order. Decoding uses the prompt's fast tokenizer (same as vLLM's).
torch and transformers are imported only when a model runs (this module is imported to validate
options and must stay cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from ..prompts import Prompt
from .base import Generation, ModelLoadOptions, cached_engine, register_backend, strip_eos


class TransformersOptions(ModelLoadOptions):
    device: str = Field("auto", description="cpu | cuda | auto")
    generate_batch_size: int = Field(16, ge=1, description="prompts per generate call")


@register_backend("transformers", TransformersOptions)
class TransformersBackend:
    """Hugging Face transformers `generate`, greedy, CPU or GPU."""

    needs_model = True
    requires = (("torch", "pip install 'curate[hf]'"), ("transformers", "pip install 'curate[hf]'"))

    def __init__(self, model: str | None, options: TransformersOptions | None = None) -> None:
        if not model:
            raise ValueError("the transformers backend needs a model folder or hub id")
        self.model = model
        self.options = options if options is not None else TransformersOptions()

    def _device(self) -> str:
        if self.options.device != "auto":
            return self.options.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def engine(self) -> Any:  # (model, tokenizer), imported lazily
        dtype_name = self.options.dtype

        def make() -> Any:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            dtype = getattr(torch, dtype_name) if dtype_name != "auto" else "auto"
            model: Any = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype)
            model = model.to(self._device()).eval()
            tok = AutoTokenizer.from_pretrained(self.model)
            return model, tok

        return cached_engine(("transformers", self.model, dtype_name, self._device()), make)

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        import torch

        model, tok = self.engine()
        eos = model.config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
        budget = max(1, self.options.max_model_len - max_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].token_ids))
        results: list[Generation | None] = [None] * len(prompts)
        dev = model.device
        size = self.options.generate_batch_size
        for s in range(0, len(order), size):
            idx = order[s : s + size]
            seqs = [prompts[i].token_ids[:budget] for i in idx]
            width = max(len(x) for x in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, x in enumerate(seqs):
                ids[r, width - len(x) :] = torch.tensor(x, dtype=torch.long)
                mask[r, width - len(x) :] = 1
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids.to(dev),
                    attention_mask=mask.to(dev),
                    do_sample=False,
                    max_new_tokens=max_tokens,
                    pad_token_id=pad,
                    eos_token_id=eos,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
            for r, i in enumerate(idx):
                new = strip_eos(out[r, width:].tolist(), eos)
                text = tok.decode(new, skip_special_tokens=True)
                results[i] = Generation(text.strip(" "), new)
        return [g for g in results if g is not None]
