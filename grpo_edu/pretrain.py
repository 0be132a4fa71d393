"""Warm start: supervised fine-tuning (SFT) of the tiny model on a task's train split.

RL needs a policy that already finds the right answer *sometimes*: with a group of G samples
that are all wrong (or all right), every group-relative advantage is zero and GRPO learns nothing.
So, as DeepSeekMath starts RL from an instruction-tuned model, the course starts from a short
SFT run whose policy knows the answer (high greedy accuracy) but is unsure of it: trained with
label smoothing, it keeps probability on wrong digits, and answers correctly only about half of
the time when sampling at temperature 1. What RL has to do is turn that knowledge into reliable
samples, which is what GRPO on a strong base model is known to do (see ``evaluate`` on pass@k).

The loss is next-token cross-entropy on the answer and EOS only (the prompt is given, not
learned). Everything is seeded, so the same seed gives the same checkpoint.

The scratchpad warm start (``ScratchpadPretrainConfig``, shipped as ``sum4``) is a second SFT
stage on top of ``add2``: it teaches both answer formats of ``formats`` but, on purpose, rarely
*chooses* the scratchpad (its first token is learned from a few examples only), so that RL has
a format to discover: see ``pretrain_scratchpad``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from .evaluate import accuracy, evaluate_policy
from .models import ModelConfig, build_model, model_config_of, n_params
from .rollout import position_ids_from_mask
from .tasks import Problem, get_task
from .tokenizer import build_tokenizer
from .vocab import EOS, PAD_ID


@dataclass(frozen=True)
class PretrainConfig:
    """Supervised warm start. Defaults make the shipped ``add2`` checkpoint."""

    task: str = "add2"
    """Task whose train split is learned."""
    seed: int = 0
    """Seeds model init, batch order and the probe evaluation."""
    batch_size: int = 128
    """Problems per step."""
    lr: float = 3e-3
    """AdamW peak learning rate (1e-3..1e-2 for a model this small)."""
    warmup_steps: int = 50
    """Linear warmup."""
    min_lr_ratio: float = 1.0
    """After warmup, cosine decay from ``lr`` to ``lr * min_lr_ratio``; 1.0 keeps it constant.
    The shipped recipes decay to 0.05: more stable (at constant lr 3e-3, add2 has greedy accuracy
    0.92 after 1,200 steps but 0.52 after 1,600) and more accurate (0.954 after 1,200)."""
    weight_decay: float = 0.01
    steps: int = 1200
    """Optimizer steps."""
    label_smoothing: float = 0.15
    """Share of each target spread over the vocabulary: the warm start's doubt, which sets how far
    sampled accuracy sits below greedy accuracy (0 = a confident model)."""
    eval_every: int = 100
    """Steps between probe evaluations shown in the progress bar."""
    probe_size: int = 256
    """Train problems used for the progress-bar probe (the eval split is never looked at)."""


@dataclass(frozen=True)
class ScratchpadPretrainConfig(PretrainConfig):
    """SFT of both answer formats of a +/- chain task, from a shipped warm start.

    Each example of a batch is, independently: with probability ``one_step_share`` a problem of
    ``one_step_task`` with its direct answer (the skill every step uses); otherwise a chain of
    one of ``tasks`` (uniformly), whose target is its scratchpad with probability
    ``scratchpad_share`` (only for tasks not in ``direct_only``) and its direct answer otherwise.
    The first token of a scratchpad target, the mark that *chooses* the format, is in the loss
    of a share ``choice_supervision`` of the scratchpad examples only: the model learns to write
    scratchpads well when it starts one, and to start one rarely. Direct answers always have
    their first token supervised, so P(mark) ~ s * c / (s * c + 1 - s) with s = scratchpad_share,
    c = choice_supervision.
    """

    init_from: str = "add2"
    """Shipped checkpoint (or directory) the SFT starts from."""
    tasks: tuple[str, ...] = ("sum4",)
    """Chain tasks whose train splits give the chain examples."""
    direct_only: tuple[str, ...] = ()
    """Those of ``tasks`` that never get a scratchpad target (the 'beyond selection' warm start)."""
    one_step_task: str = "add2"
    """Task of the one-step examples (direct answers)."""
    one_step_share: float = 0.3
    """Share of one-step examples in a batch."""
    scratchpad_share: float = 0.75
    """Share of chain examples (of tasks with scratchpads) whose target is the scratchpad."""
    choice_supervision: float = 0.045
    """Share of scratchpad examples whose first token (the mark) is learned."""
    max_new_tokens: int = 24
    """Completion budget of the evaluation (a sum4 scratchpad needs at most 22 with EOS)."""
    eval_n: int = 8
    """Samples per eval problem in the card (share, sampled accuracy, pass@k, forced formats)."""
    eval_ks: tuple[int, ...] = field(default=(1, 8))
    """k of the card's pass@k."""


SCRATCHPAD = ScratchpadPretrainConfig(
    task="sum4",
    lr=2e-3,
    warmup_steps=50,
    min_lr_ratio=0.0,
    steps=800,
    label_smoothing=0.0,
    eval_every=200,
)
"""The scratchpad warm starts' recipe (``sum4``; ``sum5`` changes only what it is shown)."""

RECIPES: dict[str, PretrainConfig] = {
    "add2": PretrainConfig(task="add2", min_lr_ratio=0.05),
    "sub2": PretrainConfig(task="sub2", label_smoothing=0.1, min_lr_ratio=0.05),
    "sum4": SCRATCHPAD,
    "sum5": replace(
        SCRATCHPAD,
        task="sum5",
        tasks=("sum3", "sum4", "sum5"),
        direct_only=("sum4", "sum5"),
        max_new_tokens=30,
    ),
}
"""The recipe of each shipped checkpoint in ``data/checkpoints/<task>/``: ``python -m grpo_edu
pretrain TASK`` uses it (a task without one gets ``PretrainConfig(task=TASK)``). Each is tuned so
that sampled accuracy at temperature 1 on the eval split lands near 0.6, with greedy accuracy as
high as the step budget allows, in under 5 minutes on 2 CPU cores. ``sum4`` is the scratchpad
warm start (``ScratchpadPretrainConfig``): scratchpad share <= 15% at temperature 1, forced
scratchpads at least twice as accurate as forced direct answers, in under 10 minutes. ``sum5``
is the 'beyond selection' warm start: the same recipe, but scratchpads only ever shown for
3 operands (4 and 5 operands get direct answers only); RL then trains on 5 operands."""


def recipe(task: str) -> PretrainConfig:
    """The shipped recipe for ``task``, or the defaults with ``task`` set."""
    return RECIPES.get(task, replace(PretrainConfig(), task=task))


def lr_factor(config: PretrainConfig, step: int) -> float:
    """Multiplier of ``lr`` at ``step``: linear warmup, then cosine down to ``min_lr_ratio``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )


def encode_sft_batch(tokenizer, problems: list[Problem]) -> dict[str, torch.Tensor]:
    """Right-padded ``<bos>prompt answer<eos>`` ids with labels on the answer and EOS only."""
    prompts = tokenizer([p.prompt for p in problems]).input_ids
    answers = [tokenizer(str(p.answer) + EOS, add_special_tokens=False).input_ids for p in problems]
    L = max(len(q) + len(a) for q, a in zip(prompts, answers, strict=True))
    input_ids = torch.full((len(problems), L), PAD_ID)  # (B, L)
    labels = torch.full((len(problems), L), -100)  # (B, L): -100 = not learned
    attention_mask = torch.zeros(len(problems), L, dtype=torch.long)  # (B, L)
    for i, (q, a) in enumerate(zip(prompts, answers, strict=True)):
        input_ids[i, : len(q) + len(a)] = torch.tensor(q + a)
        labels[i, len(q) : len(q) + len(a)] = torch.tensor(a)
        attention_mask[i, : len(q) + len(a)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def sft_loss(model, batch: dict[str, torch.Tensor], label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of the labelled (answer) tokens."""
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=position_ids_from_mask(batch["attention_mask"]),
    ).logits  # (B, L, V)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1),
        batch["labels"][:, 1:].flatten(),
        ignore_index=-100,
        label_smoothing=label_smoothing,
    )


def pretrain(
    config: PretrainConfig = PretrainConfig(),
    model_config: ModelConfig = ModelConfig(),
    progress: bool = True,
):
    """Train a warm start; returns ``(model, tokenizer, card)`` where card is a JSON-able dict.

    A ``ScratchpadPretrainConfig`` goes to ``pretrain_scratchpad`` (``model_config`` unused: it
    starts from a shipped checkpoint)."""
    if isinstance(config, ScratchpadPretrainConfig):
        from .pretrain_scratchpad import pretrain_scratchpad  # it builds on this module

        return pretrain_scratchpad(config, progress)
    t0, cpu0 = time.perf_counter(), time.process_time()
    task, tokenizer = get_task(config.task), build_tokenizer()
    model = build_model(model_config, seed=config.seed).train()
    gen = torch.Generator().manual_seed(config.seed)
    train, probe = list(task.train), list(task.train[: config.probe_size])

    def next_batch():
        idx = torch.randint(len(train), (config.batch_size,), generator=gen).tolist()
        return encode_sft_batch(tokenizer, [train[i] for i in idx])

    def probe_accuracy():
        return accuracy(model, tokenizer, probe, temperature=1.0, seed=config.seed)

    probe_acc = _fit(model, config, next_batch, probe_accuracy, progress)
    train_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    model.eval()
    report = evaluate_policy(model, tokenizer, task.eval, k=8, temperature=1.0, seed=config.seed)
    return model, tokenizer, card(config, model, probe_acc, report, train_seconds, cpu_seconds)


def card(
    config: PretrainConfig,
    model,
    probe_acc: float,
    report,
    train_seconds: float,
    cpu_seconds: float,
    **extra,
) -> dict:
    """A warm start's ``card.json``: its recipe, model, evaluation and timings (and ``extra``)."""
    return {
        "task": config.task,
        "steps": config.steps,
        "seed": config.seed,
        "pretrain": asdict(config),
        "model": model_config_of(model),
        "n_params": n_params(model),
        "probe_sampled_accuracy": probe_acc,
        "eval": report.as_dict(),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(cpu_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **extra,
    }  # fmt: skip


def _fit(model, config: PretrainConfig, next_batch, probe_accuracy, progress: bool) -> float:
    """The SFT loop: AdamW, warmup + cosine, ``config.steps`` batches; returns the last probe."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(config, s))
    probe_acc = 0.0
    bar = tqdm(range(config.steps), desc=f"pretrain {config.task}", disable=not progress)
    for step in bar:
        loss = sft_loss(model, next_batch(), config.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % config.eval_every == 0:
            probe_acc = probe_accuracy()
            bar.set_postfix(loss=f"{loss.item():.3f}", probe_sampled=f"{probe_acc:.2f}")
    return probe_acc
