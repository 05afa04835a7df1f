"""Fine-tune a student refiner on `refiner_label`'s SFT rows with transformers (plain PyTorch loop).

* Model: a local checkpoint (`init`, e.g. a released refiner to adapt) or a fresh preset
  (refiners/presets.py). Tokenizer: the checkpoint's, else the bundled Llama-2 one.
* Sequence = the prompt exactly as `prox_refine` sends it (BOS once as an id, then the prompt text
  without special tokens) + the target program + EOS. The loss is on the target and EOS tokens
  only: the output head runs on those positions alone, which also saves most of the compute of a
  small model (its 32000-way head costs more than its layers).
* Loss per optimizer step = summed token losses / target tokens of the whole step, so gradient
  accumulation over micro-batches gives the same gradient as one big batch.
* Length grouping (default): examples are shuffled, cut into groups of 64 micro-batches, sorted by
  length inside a group, and the micro-batches shuffled again, so padding is small and order random.
* bf16 autocast on CUDA (fp32 master weights), fp32 on CPU. AdamW, cosine decay from `lr` to
  `min_lr` after a linear warm-up (ProX: batch 64, 3-5 epochs, 1e-5 -> 1e-6 from a pretrained LM).
* Checkpoints every `save_steps` under OUTPUT/checkpoints/step-N (weights, optimizer, step); `resume`
  continues from the latest one with the same data order (it is a function of the seed).
* Output folder: weights + config + generation config (greedy) + tokenizer: `prox_refine` loads it
  with `backend: vllm` or `transformers` as it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError

from . import chat
from .prompts import BOS, load_tokenizer, tokenizer_for_model
from .train_options import TrainConfig

IGNORE = -100


@dataclass
class TrainResult:
    output: str
    steps: int
    examples: int
    skipped_too_long: int
    tokens: int  # non-padding tokens processed (prompt + target), all epochs
    target_tokens: int
    wall_s: float
    tokens_per_s: float
    losses: list[float] = field(default_factory=list)
    params: int = 0
    device: str = "cpu"
    dtype: str = "float32"


def in_holdout(doc_id: str, share: float) -> bool:
    """Deterministic document split shared by `refiner train` and `refiner eval`."""
    if share <= 0:
        return False
    h = int(hashlib.sha1(str(doc_id).encode()).hexdigest()[:8], 16)
    return h / 2**32 < share


def select(rows: Sequence[dict], stage: str = "all", holdout: float = 0.0, split: str = "train") -> list[dict]:
    if stage not in ("all", "doc", "chunk"):
        raise ConfigError(f"stage: expected all | doc | chunk, got {stage!r}")
    out = []
    for r in rows:
        if not r["valid"] or (stage != "all" and r["stage"] != stage):
            continue
        if in_holdout(r["doc_id"], holdout) == (split == "heldout"):
            out.append(r)
    return out


def encode_examples(
    rows: Sequence[dict], tok: Any, max_len: int, base: str | None = None
) -> tuple[list[tuple[list[int], int]], int]:
    """(ids, prompt length) per row that fits `max_len`, and how many did not. `base`: the model folder
    whose prompt format to use (its chat template when its vocabulary is not Llama-2's, as prox_refine)."""
    for r in rows:
        if not r["prompt"].startswith(BOS):
            raise ConfigError(f"SFT row of {r['doc_id']}: prompt does not start with {BOS} (not a refiner_label row)")
    bos, eos = tok.token_to_id(BOS), tok.token_to_id("</s>")
    texts = [r["prompt"] for r in rows]
    if bos is not None and eos is not None:
        encs = tok.encode_batch([t[len(BOS) :] for t in texts], add_special_tokens=False) if rows else []
        prompts = [[bos, *e.ids] for e in encs]
        end = [eos]
    elif base is not None:
        try:
            prompts = chat.ids_for_model(base, texts)
            end = list(chat.load_template(base).end_ids)
        except ValueError as e:
            raise ConfigError(f"--base {base}: {e}") from None
    else:
        raise ConfigError("tokenizer has no <s> / </s> and no chat template: refiners use the Llama-2 vocabulary")
    targets = tok.encode_batch([r["target"] for r in rows], add_special_tokens=False) if rows else []
    out, skipped = [], 0
    for p, t in zip(prompts, targets):
        ids = [*p, *t.ids, *end]
        if len(ids) > max_len:
            skipped += 1
            continue
        out.append((ids, len(p)))
    return out, skipped


# a fresh preset needs hundreds of optimizer steps before it writes a valid program at all: the README's
# `small` student learned in 452 steps of 16 (2,239 documents); the bundled label config's 499 documents
# at the defaults (batch 64, 3 epochs) give too few, and every metric of that student is 0
FRESH_MIN_STEPS = 300


def too_short(steps: int, examples: int, batch_size: int) -> str:
    """The plain statement of what a fresh model trained for `steps` lacks, and the ways out."""
    return (
        f"{steps} optimizer steps ({examples} examples, batch {batch_size}) are too few for fresh weights: "
        f"a fresh preset needs about {FRESH_MIN_STEPS} before it writes valid programs, so expect a student "
        "that scores 0. Label more documents, lower --batch-size, raise --epochs, or fine-tune a pretrained "
        "model with --base PATH"
    )


def schedule(n: int, lengths: Sequence[int], cfg: TrainConfig, epochs: int) -> list[list[list[int]]]:
    """Optimizer steps -> micro-batches -> example indices, for all epochs (a function of the seed)."""
    rng = random.Random(cfg.seed)
    mb, per_step = cfg.micro_batch_size, max(1, cfg.batch_size // cfg.micro_batch_size)
    micro: list[list[int]] = []
    for _ in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        batches = []
        group = mb * 64
        for g in range(0, n, group):
            chunk = order[g : g + group]
            if cfg.group_by_length:
                chunk.sort(key=lambda i: lengths[i])
            batches += [chunk[i : i + mb] for i in range(0, len(chunk), mb)]
        if cfg.group_by_length:
            rng.shuffle(batches)
        micro += batches
    return [micro[i : i + per_step] for i in range(0, len(micro), per_step)]


def lr_at(step: int, total: int, cfg: TrainConfig, lr: float, min_lr: float) -> float:
    if step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def _load_model(cfg: TrainConfig) -> Any:
    if bool(cfg.preset) == bool(cfg.init):
        raise ConfigError("give either a model preset (--preset) or a pretrained model folder (--base), not both")
    if cfg.init:
        import torch
        from transformers import AutoModelForCausalLM

        if not Path(cfg.init, "config.json").is_file():
            raise ConfigError(f"--base {cfg.init}: not a local model folder (no config.json)")
        return AutoModelForCausalLM.from_pretrained(cfg.init, dtype=torch.float32)
    from .presets import fresh_model

    try:
        return fresh_model(cfg.preset, cfg.seed)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"--preset: {e}") from None


def _optimizer(model: Any, lr: float, cfg: TrainConfig) -> Any:
    import torch

    # fused AdamW: one kernel over all parameters; the per-tensor loop took 3-5x longer on CPU here
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay, fused=True)


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    found = [p for p in found if (p / "state.json").is_file()]
    return found[-1] if found else None


def micro_loss(model: Any, batch: list[tuple[list[int], int]], device: str, dtype: Any) -> tuple[Any, int, int]:
    """Summed cross-entropy over target tokens of a micro-batch, its target tokens and non-pad tokens."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    x = torch.zeros((len(batch), width), dtype=torch.long)
    att = torch.zeros((len(batch), width), dtype=torch.long)
    tgt = torch.zeros((len(batch), width), dtype=torch.bool)
    for r, (ids, n_prompt) in enumerate(batch):
        x[r, : len(ids)] = torch.tensor(ids)
        att[r, : len(ids)] = 1
        tgt[r, n_prompt : len(ids)] = True  # positions whose token is predicted (target + EOS)
    x, att, tgt = x.to(device), att.to(device), tgt.to(device)
    with torch.autocast(device_type="cuda", dtype=dtype, enabled=device.startswith("cuda")):
        h = model.model(input_ids=x, attention_mask=att).last_hidden_state
        sel = h[:, :-1][tgt[:, 1:]]  # hidden state at t predicts token t + 1
        logits = model.lm_head(sel).float()
    loss = torch.nn.functional.cross_entropy(logits, x[:, 1:][tgt[:, 1:]], reduction="sum")
    return loss, int(tgt.sum()), int(att.sum())


def train(
    cfg: TrainConfig, rows: Sequence[dict] | None = None, log: Callable[[str], None] | None = None
) -> TrainResult:
    """Train and write the refiner folder. `rows`: SFT rows already read (else read from cfg.data)."""
    import torch

    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(cfg.output)
    examples, skipped = _training_examples(cfg, rows)
    device = _device(cfg.device)
    amp = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(cfg.seed)
    model = _load_model(cfg)
    lr = cfg.lr if cfg.lr is not None else (1e-5 if cfg.init else 2e-3)
    min_lr = cfg.min_lr if cfg.min_lr is not None else lr / 10
    steps, total = _step_plan(cfg, examples, log)
    model, opt, start_step = _start(cfg, model, out, device, lr, total, log)
    params = sum(p.numel() for p in model.parameters())
    log(
        f"training {params / 1e6:.1f}M parameters on {device} ({'bf16 autocast' if amp == torch.bfloat16 else 'fp32'}): "
        f"{len(examples)} examples ({skipped} longer than {cfg.max_len} skipped), {total} steps of "
        f"{cfg.batch_size} sequences ({cfg.micro_batch_size} per micro-batch), lr {lr:g} -> {min_lr:g}"
    )
    t0 = time.time()
    run = _Run(start_step)
    _loop(cfg, model, opt, examples, steps, total, (lr, min_lr), device, amp, out, run, log)
    wall = time.time() - t0
    result = TrainResult(
        str(out),
        run.step - start_step,
        len(examples),
        skipped,
        run.tokens,
        run.target_tokens,
        round(wall, 2),
        round(run.tokens / max(wall, 1e-9), 1),
        run.losses,
        params,
        device,
        str(amp).replace("torch.", ""),
    )
    _save(cfg, model, out, result)
    return result


def _training_examples(cfg: TrainConfig, rows: Sequence[dict] | None) -> tuple[list[tuple[list[int], int]], int]:
    """The selected SFT rows encoded (ids, prompt length), and how many were longer than max_len."""
    from .sft import read_sft

    rows = select(read_sft(cfg.data) if rows is None else rows, cfg.stage, cfg.holdout, "train")
    if cfg.max_examples is not None:
        rows = rows[: cfg.max_examples]
    if not rows:
        raise ConfigError(f"no valid SFT rows for stage {cfg.stage!r} in {', '.join(cfg.data) or 'the given rows'}")
    tok = tokenizer_for_model(cfg.init) if cfg.init else load_tokenizer(None)
    examples, skipped = encode_examples(rows, tok, cfg.max_len, base=cfg.init)
    if not examples:
        raise ConfigError(f"every SFT row is longer than max_len {cfg.max_len}")
    return examples, skipped


def _step_plan(
    cfg: TrainConfig, examples: Sequence[tuple[list[int], int]], log: Callable[[str], None]
) -> tuple[list[list[list[int]]], int]:
    """Every epoch's optimizer steps, and how many of them run (a fractional epoch, max_steps)."""
    epochs = max(1, math.ceil(cfg.epochs))
    steps = schedule(len(examples), [len(e[0]) for e in examples], cfg, epochs)
    total = int(len(steps) * cfg.epochs / epochs) if cfg.epochs < epochs else len(steps)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    if cfg.preset and total < FRESH_MIN_STEPS:
        log(f"warning: {too_short(total, len(examples), cfg.batch_size)}")
    return steps, total


def _start(
    cfg: TrainConfig, model: Any, out: Path, device: str, lr: float, total: int, log: Callable[[str], None]
) -> tuple[Any, Any, int]:
    """The model on its device and its optimizer, from the latest checkpoint with `resume`; the first step."""
    import torch

    start_step = 0
    ck = _latest_checkpoint(out) if cfg.resume else None
    if ck is not None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(ck, dtype=torch.float32)
        start_step = json.loads((ck / "state.json").read_text())["step"]
    model.to(device).train()
    opt = _optimizer(model, lr, cfg)
    if ck is not None:
        opt.load_state_dict(torch.load(ck / "optimizer.pt", map_location=device))
        log(f"resuming from {ck} (step {start_step} of {total})")
    return model, opt, start_step


@dataclass
class _Run:
    """What the loop has done so far: the step it reached, tokens seen, the loss of each step."""

    step: int
    tokens: int = 0
    target_tokens: int = 0
    losses: list[float] = field(default_factory=list)


def _loop(
    cfg: TrainConfig,
    model: Any,
    opt: Any,
    examples: Sequence[tuple[list[int], int]],
    steps: list[list[list[int]]],
    total: int,
    lrs: tuple[float, float],
    device: str,
    amp: Any,
    out: Path,
    run: _Run,
    log: Callable[[str], None],
) -> None:
    """Optimizer steps from run.step to `total` (or until max_time_s), checkpoints every save_steps."""
    t0 = time.time()
    bar = _Bar(total, run.step, cfg.progress)
    for step in range(run.step, total):
        if cfg.max_time_s is not None and time.time() - t0 > cfg.max_time_s:
            log(f"stopping at step {step}: max_time_s {cfg.max_time_s} reached")
            run.step = step
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, cfg, *lrs)
        _optimizer_step(model, opt, [[examples[i] for i in mb] for mb in steps[step]], device, amp, run)
        rate = run.tokens / max(1e-9, time.time() - t0)
        bar.update(step + 1, run.losses[-1], rate)
        if not bar.live and ((step + 1) % cfg.log_every == 0 or step + 1 == total):
            log(
                f"step {step + 1}/{total}  loss {run.losses[-1]:.4f}  {rate:,.0f} tokens/s  "
                f"lr {opt.param_groups[0]['lr']:.2e}"
            )
        if cfg.save_steps and (step + 1) % cfg.save_steps == 0 and step + 1 < total:
            _checkpoint(model, opt, out, step + 1, tok_from=cfg.init)
    else:
        run.step = total
    bar.close()


def _optimizer_step(
    model: Any, opt: Any, micro: list[list[tuple[list[int], int]]], device: str, amp: Any, run: _Run
) -> None:
    """One optimizer step over its micro-batches: loss per target token of the whole step, clipped."""
    import torch

    n_tgt = sum(len(ids) - n for b in micro for ids, n in b)
    opt.zero_grad(set_to_none=True)
    step_loss = 0.0
    for b in micro:
        loss, _, n_tok = micro_loss(model, b, device, amp)
        (loss / n_tgt).backward()
        step_loss += float(loss.detach())
        run.tokens += n_tok
    run.target_tokens += n_tgt
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    run.losses.append(step_loss / n_tgt)


def _save(cfg: TrainConfig, model: Any, out: Path, result: TrainResult) -> None:
    """The refiner folder prox_refine loads, with what made it (config, result, final loss)."""
    from .presets import save_refiner

    model.eval().to("cpu")
    info = {
        "trained": True,
        "preset": cfg.preset,
        "init": cfg.init,
        "config": asdict(cfg),
        "result": {k: v for k, v in asdict(result).items() if k != "losses"},
        "final_loss": result.losses[-1] if result.losses else None,
    }
    save_refiner(model, out, tokenizer_from=cfg.init, info=info)


def _checkpoint(model: Any, opt: Any, out: Path, step: int, tok_from: str | None) -> None:
    import torch

    from .presets import save_refiner

    ck = out / "checkpoints" / f"step-{step}"
    tmp = ck.with_name(ck.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_refiner(model, tmp, tokenizer_from=tok_from)
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(ck, ignore_errors=True)
    tmp.rename(ck)  # a checkpoint is either complete or absent
    for old in (out / "checkpoints").glob("step-*"):
        if old != ck and not old.name.endswith(".partial"):
            shutil.rmtree(old, ignore_errors=True)  # keep only the latest


class _Bar:
    """A rich progress bar on a terminal; elsewhere the caller logs a line every `log_every` steps."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.prog = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.prog = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.prog.start()
            self.task = self.prog.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.prog is not None:
            self.prog.update(self.task, completed=step, info=f"loss {loss:.4f}  {rate:,.0f} tok/s")

    def close(self) -> None:
        if self.prog is not None:
            self.prog.stop()
