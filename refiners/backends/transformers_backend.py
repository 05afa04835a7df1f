"""Hugging Face transformers: batched greedy `generate` with left padding, on CPU or GPU.

Prompts are sorted by length before batching (less padding), run `batch_size` at a time, and
returned in the original order. Decoding uses the prompt's fast tokenizer (same as vLLM's).
"""

from __future__ import annotations

from typing import Sequence

from ..prompts import Prompt
from . import Generation, cached_engine, strip_eos


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, dtype: str = "float32", device: str = "auto", batch_size: int = 16,
                 max_model_len: int = 2048, **_: object) -> None:
        self.model = model
        self.dtype = dtype
        self.device = device
        self.batch_size = batch_size
        self.max_model_len = max_model_len

    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def engine(self):  # noqa: ANN201
        def make():  # noqa: ANN202
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            dtype = getattr(torch, self.dtype) if self.dtype != "auto" else "auto"
            model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype).to(self._device()).eval()
            tok = AutoTokenizer.from_pretrained(self.model)
            return model, tok

        return cached_engine(("transformers", self.model, self.dtype, self._device()), make)

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        import torch

        model, tok = self.engine()
        eos = model.config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
        budget = max(1, self.max_model_len - max_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].token_ids))
        results: list[Generation | None] = [None] * len(prompts)
        dev = model.device
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            seqs = [prompts[i].token_ids[:budget] for i in idx]
            width = max(len(x) for x in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, x in enumerate(seqs):
                ids[r, width - len(x):] = torch.tensor(x, dtype=torch.long)
                mask[r, width - len(x):] = 1
            with torch.inference_mode():
                out = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), do_sample=False,
                                     max_new_tokens=max_tokens, pad_token_id=pad, eos_token_id=eos,
                                     temperature=None, top_p=None, top_k=None)
            for r, i in enumerate(idx):
                new = strip_eos(out[r, width:].tolist(), eos)
                text = tok.decode(new, skip_special_tokens=True)
                results[i] = Generation(text.strip(" "), new)
        return [g for g in results if g is not None]
