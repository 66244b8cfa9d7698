"""One training run, nanoGPT-style: AdamW, warmup then cosine (or WSD) decay, clipping.

bf16 autocast on CUDA, fp32 on CPU; deterministic on CPU for a given seed. A non-finite loss
stops the run as *diverged*: the caller records it as failed with that message rather than
losing it. What is measured: final train loss, an EMA of it, held-out loss on a fixed set of
windows, tokens, wall time, throughput, peak memory and the loss curve.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from scalinglab.errors import ParameterError, ScalingLabError
from scalinglab.sweep.data import Batches, Corpus, eval_windows, windows
from scalinglab.sweep.model import ModelConfig, Transformer
from scalinglab.sweep.schema import TRAIN_RULES, settle

Schedule = Literal["cosine", "wsd", "constant"]


@dataclass(frozen=True)
class TrainConfig:
    lr: float
    batch_tokens: int
    steps: int
    weight_decay: float = 0.1
    warmup: float = 0.05  # fraction of steps (at least one step)
    schedule: Schedule = "cosine"
    min_lr_ratio: float = 0.1
    decay_fraction: float = 0.2  # WSD: the final share of steps that decays
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    eval_tokens: int = 65_536
    evals: int = 8  # held-out evaluations along the curve (plus the final one)
    ema: float = 0.9  # smoothing of the reported train loss

    def __post_init__(self) -> None:
        problem = settle(self, TRAIN_RULES)  # the plan file's rules
        if problem:
            raise ParameterError(f"{problem[0]} {problem[1]}", problem[0])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimiser step ``step`` (0-based)."""
    warm = max(1, int(round(cfg.warmup * cfg.steps)))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "wsd":
        decay_start = cfg.steps - max(1, int(round(cfg.decay_fraction * cfg.steps)))
        if step < decay_start:
            return cfg.lr
        frac = (step - decay_start) / max(1, cfg.steps - decay_start)
        return cfg.lr - (cfg.lr - floor) * frac
    frac = (step - warm) / max(1, cfg.steps - warm)
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * min(1.0, frac)))


class Diverged(ScalingLabError, RuntimeError):
    """The loss became NaN or infinite (the runner records the run as failed with this)."""


@dataclass
class TrainResult:
    train_loss: float
    ema_loss: float
    eval_loss: float
    tokens: int
    steps: int
    wall_time_s: float
    tokens_per_s: float  # training steps only: no compile, warm-up or evaluation time
    peak_mem_bytes: int
    curve: pd.DataFrame = field(repr=False)
    compile_s: float = 0.0  # compiling (and, on CUDA, warming up) before the first step


def optimizer_for(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW, decaying matrices only (not norm gains), fused kernels on CUDA."""
    params = {id(p): p for p in model.parameters()}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": float(cfg.weight_decay)},
              {"params": no_decay, "weight_decay": 0.0}]
    # float(): a plan may say `beta1 = 0` and keeps the int for its run id; torch's Adam
    # refuses betas of mixed int and float ("betas must be either both floats or both Tensors")
    return torch.optim.AdamW(groups, lr=float(cfg.lr), betas=(float(cfg.beta1), float(cfg.beta2)),
                             fused=device.type == "cuda")


@torch.no_grad()
def evaluate(model: Transformer, corpus: Corpus, seq_len: int, n_tokens: int, batch_size: int,
             device: torch.device, autocast: Any) -> float:
    """Mean held-out loss over the same fixed windows for every run."""
    model.eval()
    starts = eval_windows(corpus.val, seq_len, n_tokens)
    total, count = 0.0, 0
    for i in range(0, len(starts), batch_size):
        x, y = windows(corpus.val, starts[i:i + batch_size], seq_len, device)
        with autocast():
            total += float(model(x, y)) * len(x)
        count += len(x)
    model.train()
    return total / count


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # process peak RSS


def train(model_cfg: ModelConfig, cfg: TrainConfig, corpus: Corpus, device: str = "cpu",
          compile: bool = False, on_step: Callable[[int, int, float], None] | None = None,
          clock_start: float | None = None) -> TrainResult:
    """Train one model from scratch; raises :class:`Diverged` on a non-finite loss.

    The curve's ``wall_s`` is wall-clock seconds from ``clock_start`` (a ``time.perf_counter()``
    reading; default: when training begins) to each logged step, compile and held-out
    evaluations included: the time a user waited to see that point. ``wall_time_s`` is on the
    same clock, to the end of the final held-out evaluation, so no point lies beyond it.
    ``on_step(step, tokens, loss)`` is called after each logged step (for progress displays).
    With ``compile`` or on CUDA, one untimed forward/backward pass first compiles and warms up
    (``compile_s``); ``tokens_per_s`` counts the training steps alone.
    """
    dev = torch.device(device)
    if model_cfg.vocab_size < corpus.vocab_size:
        raise ParameterError(f"vocab_size {model_cfg.vocab_size} is smaller than the "
                             f"vocabulary of {corpus.name} ({corpus.vocab_size})", "vocab_size")
    batch_size = max(1, cfg.batch_tokens // model_cfg.seq_len)
    tokens_per_step = batch_size * model_cfg.seq_len
    torch.manual_seed(cfg.seed)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
    model = Transformer(model_cfg).to(dev)
    step_model = torch.compile(model) if compile else model
    opt = optimizer_for(model, cfg, dev)
    data = Batches(corpus.train, model_cfg.seq_len, batch_size, cfg.seed, dev)

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")

    begin = time.perf_counter()
    origin = begin if clock_start is None else clock_start
    compile_s = 0.0
    if compile or dev.type == "cuda":
        # One forward and backward pass on the first batch, gradients then dropped: it compiles
        # the graphs (torch.compile is lazy) and pays CUDA's one-off costs (context, cuBLAS
        # handles, allocator) outside the timed steps, so tokens_per_s is the steady rate. No
        # optimiser step is taken and the batch stream is untouched, so the run is the same.
        wx, wy = Batches(corpus.train, model_cfg.seq_len, batch_size, cfg.seed, dev).next()
        with autocast():
            step_model(wx, wy).backward()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        compile_s = time.perf_counter() - begin
    log_every = max(1, cfg.steps // 100)
    eval_at = set(np.linspace(0, cfg.steps, cfg.evals + 1).astype(int)[1:-1].tolist())
    mid_eval_tokens = max(model_cfg.seq_len, cfg.eval_tokens // 4)
    rows: list[dict[str, Any]] = []
    ema, ema_weight, loss_value = 0.0, 0.0, math.nan
    eval_time, start = 0.0, time.perf_counter()
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = data.next()
        with autocast():
            loss = step_model(x, y)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        last = step == cfg.steps - 1
        if step % log_every == 0 or last or (step + 1) in eval_at:
            loss_value = float(loss.detach())  # the only host sync: on logged steps
            if not math.isfinite(loss_value):
                raise Diverged(f"diverged at step {step + 1}: train loss is {loss_value}")
            ema = cfg.ema * ema + (1 - cfg.ema) * loss_value
            ema_weight = cfg.ema * ema_weight + (1 - cfg.ema)
            row = {"step": step + 1, "tokens": (step + 1) * tokens_per_step, "loss": loss_value,
                   "eval_loss": math.nan}
            if (step + 1) in eval_at:
                t0 = time.perf_counter()
                row["eval_loss"] = evaluate(model, corpus, model_cfg.seq_len, mid_eval_tokens,
                                            batch_size, dev, autocast)
                eval_time += time.perf_counter() - t0
            row["wall_s"] = time.perf_counter() - origin  # the point as seen: its eval included
            rows.append(row)
            if on_step is not None:
                on_step(step + 1, (step + 1) * tokens_per_step, loss_value)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    train_time = time.perf_counter() - start - eval_time
    eval_loss = evaluate(model, corpus, model_cfg.seq_len, cfg.eval_tokens, batch_size, dev,
                         autocast)
    if not math.isfinite(eval_loss):
        raise Diverged(f"diverged: held-out loss is {eval_loss}")
    rows[-1]["eval_loss"] = eval_loss
    tokens = cfg.steps * tokens_per_step
    return TrainResult(
        train_loss=loss_value,
        ema_loss=ema / ema_weight,
        eval_loss=eval_loss,
        tokens=tokens,
        steps=cfg.steps,
        # on the curve's clock: from clock_start, as its wall_s. Counted from `begin` it left out
        # the runner's corpus load and so could end before the curve's last point (caught by
        # test_sweep_runner once one-thread runs made the final evaluation quicker than the load)
        wall_time_s=time.perf_counter() - origin,
        tokens_per_s=tokens / max(train_time, 1e-9),
        peak_mem_bytes=_peak_memory(dev),
        curve=pd.DataFrame(rows, columns=["step", "tokens", "loss", "eval_loss", "wall_s"]),
        compile_s=compile_s,
    )
