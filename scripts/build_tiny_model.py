"""Build a tiny random Llama-style causal LM with the real Llama-2 tokenizer, for tests and benchmarks.

    python scripts/build_tiny_model.py OUT_DIR [--seed 0]

hidden 64, 2 heads (head_dim 32: vLLM's CPU attention needs head_dim in {32, 64, 80, ...}),
1 KV head (multi-query, like the ProX refiners), 2 layers, vocab 32000, context 2048, float32
safetensors. Weights are drawn from a seeded generator, so the folder is byte-identical per seed.
The output head is scaled up (`--logit-scale`) so that greedy argmax has wide margins and float32
kernels of vLLM and transformers pick the same token (no near-ties flipping between backends).
No network: the tokenizer files are copied from refiners/assets/llama2/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = REPO / "refiners" / "assets" / "llama2"


def build(out: Path, seed: int = 0, logit_scale: float = 8.0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    cfg = LlamaConfig(
        vocab_size=32000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "norm" in name:
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        model.lm_head.weight.mul_(logit_scale)
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"):
        shutil.copyfile(TOKENIZER_DIR / name, out / name)
    (out / "README.md").write_text(
        "Tiny random Llama (hidden 64, 2 heads, head_dim 32, 2 layers) built by scripts/build_tiny_model.py "
        f"with seed {seed}. Random weights: it generates junk. Tokenizer: Llama 2 (see the licence in "
        "curate/refiners/assets/llama2/README.md). Llama 2 is licensed under the LLAMA 2 Community License, "
        "Copyright (c) Meta Platforms, Inc. All Rights Reserved.\n"
    )
    (out / "curate_tiny_model.json").write_text(json.dumps({"seed": seed, "logit_scale": logit_scale}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logit-scale", type=float, default=8.0)
    a = ap.parse_args()
    print(build(a.out, a.seed, a.logit_scale))


if __name__ == "__main__":
    main()
