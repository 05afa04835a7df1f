"""Offline vLLM (`LLM.generate`), the way ProX ran its refiners: one engine per worker, big batches.

Prompts go in as token ids (`{"prompt_token_ids": ...}`) so the tokenizer never adds a second BOS.
Greedy decoding (temperature 0). The engine is created on first use and kept for the process.
"""

from __future__ import annotations

from typing import Sequence

from ..prompts import Prompt
from . import Generation, cached_engine, strip_eos


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, dtype: str = "bfloat16", max_model_len: int = 2048,
                 gpu_memory_utilization: float = 0.4, tensor_parallel_size: int = 1, enforce_eager: bool = False,
                 seed: int = 0, **_: object) -> None:
        self.model = model
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.tensor_parallel_size = tensor_parallel_size
        self.enforce_eager = enforce_eager
        self.seed = seed

    def _key(self) -> tuple:
        return ("vllm", self.model, self.dtype, self.max_model_len, self.gpu_memory_utilization,
                self.tensor_parallel_size, self.enforce_eager, self.seed)

    def engine(self):  # noqa: ANN201 - vllm.LLM, imported lazily
        def make():  # noqa: ANN202
            from vllm import LLM

            return LLM(model=self.model, dtype=self.dtype, max_model_len=self.max_model_len,
                       gpu_memory_utilization=self.gpu_memory_utilization,
                       tensor_parallel_size=self.tensor_parallel_size, enforce_eager=self.enforce_eager,
                       seed=self.seed)

        return cached_engine(self._key(), make)

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        from vllm import SamplingParams

        llm = self.engine()
        eos = llm.get_tokenizer().eos_token_id
        # leave room for the answer: a prompt longer than the context would fail the whole batch
        budget = max(1, self.max_model_len - max_tokens)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=self.seed)
        inputs = [{"prompt_token_ids": p.token_ids[:budget]} for p in prompts]
        outs = llm.generate(inputs, params, use_tqdm=False)
        return [Generation(o.outputs[0].text.strip(" "), strip_eos(o.outputs[0].token_ids, eos)) for o in outs]
