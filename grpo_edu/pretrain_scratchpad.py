"""The scratchpad warm start: SFT of both answer formats, rarely choosing the scratchpad.

``pretrain.pretrain`` sends a ``pretrain.ScratchpadPretrainConfig`` here; see that class for the
data mixture. The loop, the loss and the learning-rate schedule are ``pretrain``'s.
"""

from __future__ import annotations

import time

import torch

from .evaluate_formats import evaluate_formats, sample_formats
from .formats import scratchpad_answer
from .machine import machine_info
from .models import load_policy
from .pretrain import ScratchpadPretrainConfig, _fit, card
from .tasks import get_task
from .vocab import EOS, PAD_ID


def encode_targets(
    tokenizer, prompts: list[str], targets: list[str], learn_first: list[bool]
) -> dict[str, torch.Tensor]:
    """Like ``encode_sft_batch`` for any target text (+ EOS); ``learn_first[i]=False`` leaves the
    target's first token out of the loss."""
    ids = tokenizer(prompts).input_ids
    answers = [tokenizer(t + EOS, add_special_tokens=False).input_ids for t in targets]
    L = max(len(q) + len(a) for q, a in zip(ids, answers, strict=True))
    input_ids = torch.full((len(prompts), L), PAD_ID)  # (B, L)
    labels = torch.full((len(prompts), L), -100)  # (B, L): -100 = not learned
    attention_mask = torch.zeros(len(prompts), L, dtype=torch.long)  # (B, L)
    for i, (q, a) in enumerate(zip(ids, answers, strict=True)):
        input_ids[i, : len(q) + len(a)] = torch.tensor(q + a)
        labels[i, len(q) + (0 if learn_first[i] else 1) : len(q) + len(a)] = torch.tensor(
            a[0 if learn_first[i] else 1 :]
        )
        attention_mask[i, : len(q) + len(a)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def scratchpad_batch(config: ScratchpadPretrainConfig, gen: torch.Generator):
    """(prompts, targets, learn_first) of one batch of the mixture ``config`` describes."""
    one_step = list(get_task(config.one_step_task).train)
    chains = [list(get_task(name).train) for name in config.tasks]
    draws = torch.rand(config.batch_size, 3, generator=gen).tolist()  # (B, 3) uniforms
    prompts, targets, learn_first = [], [], []
    for u_kind, u_pick, u_choice in draws:
        if u_kind < config.one_step_share:
            p = one_step[int(u_pick * len(one_step))]
            prompts.append(p.prompt), targets.append(str(p.answer)), learn_first.append(True)
            continue
        t = int(u_pick * len(chains))
        pool = chains[t]
        p = pool[int((u_pick * len(chains) - t) * len(pool))]
        scratch = config.tasks[t] not in config.direct_only and u_choice < config.scratchpad_share
        prompts.append(p.prompt)
        targets.append(scratchpad_answer(p.prompt) if scratch else str(p.answer))
        # the mark is learned on a share choice_supervision of the scratchpads: u_choice is
        # uniform on [0, scratchpad_share) for them
        learn_first.append(
            not scratch or u_choice < config.scratchpad_share * config.choice_supervision
        )
    return prompts, targets, learn_first


def pretrain_scratchpad(config: ScratchpadPretrainConfig, progress: bool = True):
    """SFT of the scratchpad warm start from ``config.init_from``: (model, tokenizer, card).

    The card records the recipe, seed, the machine (``machine_info``), time, and on the eval
    split of ``config.task``: scratchpad share, sampled and greedy accuracy, the accuracy of each
    format when the policy chose it and when it was forced, lengths and pass@k
    (``evaluate_formats``).
    """
    for name in (config.task, *config.tasks, config.one_step_task):
        get_task(name)  # a clear error for a bad name before any work
    t0, cpu0 = time.perf_counter(), time.process_time()
    model, tokenizer = load_policy(config.init_from)
    model.train()
    gen = torch.Generator().manual_seed(config.seed)
    probe = list(get_task(config.task).train[: config.probe_size])

    def next_batch():
        return encode_targets(tokenizer, *scratchpad_batch(config, gen))

    def probe_accuracy():
        s = sample_formats(model, tokenizer, probe, 1, 1.0, config.seed, config.max_new_tokens)
        return sum(s.correct) / len(s.correct)

    probe_acc = _fit(model, config, next_batch, probe_accuracy, progress)
    train_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    model.eval()
    report = evaluate_formats(model, tokenizer, get_task(config.task).eval, config.eval_n, 1.0,
                              config.seed, config.max_new_tokens, config.eval_ks)  # fmt: skip
    info = card(
        config, model, probe_acc, report, train_seconds, cpu_seconds, machine=machine_info()
    )
    return model, tokenizer, info
