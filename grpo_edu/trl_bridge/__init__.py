"""The course's tokenizer, model, tasks and rewards in Hugging Face TRL's ``GRPOTrainer``.

The course's trainer is written to be read; TRL's is written to scale (many GPUs through
accelerate, vLLM, DeepSpeed). This module is the bridge for learners who outgrow the toy::

    from grpo_edu.trl_bridge import train_with_trl
    metrics = train_with_trl("add2", max_steps=100)     # shipped warm start, add2 train split

On several processes (``launch``, the module's ``python -m`` entry), the step's batch unchanged::

    torchrun --standalone --nproc_per_node 2 -m grpo_edu.trl_bridge --max-steps 100

Nothing is converted on the way: the tokenizer is the same ``PreTrainedTokenizerFast`` (it adds
``<bos>`` itself, so prompts are plain strings such as ``"47+8="``), the policy the same Llama,
and the functions of ``grpo_edu.rewards`` already have TRL's signature: the dataset's ``answer``
column reaches them as a keyword argument. ``cpu_grpo_config`` sets TRL's options to the course's
GRPO defaults (DeepSeekMath, arXiv:2402.03300) and to what a CPU needs; it changes these TRL
defaults: ``loss_type`` (TRL: ``"dapo"``), ``beta`` (TRL: 0), ``use_bias_correction_kl`` (TRL:
True), ``bf16`` and gradient checkpointing (TRL: on), ``learning_rate`` (TRL: 1e-6).
``tests/test_trl_parity.py`` checks that TRL's loss and gradients equal ``grpo_edu.losses``'.

One thing is adapted: TRL decodes completions with ``skip_special_tokens=True``, which would read
``1<unk>3`` as ``13``. ``make_trainer`` wraps each reward function so that it reads the text
decoded from TRL's ``completion_ids`` the course's way (``rollout.decode_completions``): the same
completion gets the same reward in both trainers.

Needs the optional dependencies, ``pip install 'grpo_edu[trl]'``. Tested with TRL 1.16.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..models import load_policy, save_policy
from ..rewards import RewardFn, correctness_reward, get_reward
from ..rollout import decode_completions
from ..tasks import get_task
from ..tokenizer import build_tokenizer


def _require(module: str):
    """Import an optional dependency, or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"grpo_edu.trl_bridge needs the '{module}' package: pip install 'grpo_edu[trl]'"
        ) from err


def task_dataset(task_name: str = "add2", split: str = "train", n: int | None = None):
    """A task's problems as a ``datasets.Dataset`` with columns ``prompt`` (str), ``answer`` (int).

    TRL feeds ``prompt`` to the model and passes every other column to each reward function, one
    value per completion, so ``rewards.correctness_reward(prompts, completions, answer=...)``
    works unchanged. ``n`` keeps the first ``n`` problems of the split (a fixed, seeded order).
    """
    datasets = _require("datasets")
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    problems = getattr(get_task(task_name), split)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int or None, got {n!r}")
        problems = problems[:n]
    return datasets.Dataset.from_dict(
        {"prompt": [p.prompt for p in problems], "answer": [p.answer for p in problems]}
    )


def world_size() -> int:
    """Processes of this run, as the launcher says (``WORLD_SIZE``: torchrun, accelerate); 1
    when started as a plain ``python``. Read before TRL sets up ``torch.distributed``."""
    text = os.environ.get("WORLD_SIZE", "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {text!r}")
    return int(text)


def per_device_batch(global_batch_size: int, num_generations: int, n_processes: int) -> int:
    """Completions each process samples per step so that all of them together sample
    ``global_batch_size``: ``global_batch_size / n_processes``, with clear errors when the
    numbers do not divide (a group may span processes: TRL gathers rewards before the group
    statistics, so each group's mean and std are those of all its G completions)."""
    if global_batch_size < 1 or global_batch_size % num_generations:
        raise ValueError(
            f"global_batch_size must be a positive multiple of num_generations "
            f"({num_generations}), got {global_batch_size}"
        )
    if global_batch_size % n_processes:
        raise ValueError(
            f"global_batch_size={global_batch_size} cannot be split evenly over {n_processes} "
            f"processes (WORLD_SIZE); pick a multiple of {n_processes}"
        )
    return global_batch_size // n_processes


def cpu_grpo_config(
    output_dir: str | Path, task_name: str = "add2", global_batch_size: int = 128, **overrides
):
    """A ``trl.GRPOConfig`` with the course's GRPO defaults, sane on a CPU and fully offline.

    One optimizer step = ``global_batch_size`` completions = 128 / G prompts (16 prompts x
    G = 8 completions), sampled, scored and used for one update, as in the course's trainer,
    however many processes share the work: under ``torchrun --nproc_per_node N`` (or
    ``accelerate launch``) each process samples ``global_batch_size / N`` of them
    (``per_device_train_batch_size``), and DDP averages the gradients, so N processes take the
    same steps as one, N times faster at best. Passing ``per_device_train_batch_size`` instead
    fixes the per-process share (the step then grows with N). Each setting below is commented
    with the reason and a typical range; ``overrides`` are any ``GRPOConfig`` fields and win (an
    unknown name is a ``ValueError``). On a GPU, pass ``use_cpu=False, bf16=True``.
    """
    trl = _require("trl")
    fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    n_processes = world_size()
    per_device = overrides.pop("per_device_train_batch_size", None) or per_device_batch(
        global_batch_size, overrides.get("num_generations", 8), n_processes
    )
    settings = dict(
        output_dir=str(output_dir),
        # -- precision and speed on a CPU
        bf16=False,  # TRL's default is bf16 mixed precision; float32 keeps parity with grpo_edu
        fp16=False,
        use_cpu=True,  # stay on the CPU even when a GPU is visible (several processes: gloo)
        ddp_find_unused_parameters=False,  # every weight gets a gradient: skip DDP's search
        dataloader_pin_memory=False,  # pinning only helps host-to-GPU copies
        # -- optimisation (AdamW)
        learning_rate=1e-4,  # TRL's 1e-6 is for 1B+ models; this 0.8M model: 5e-5..3e-4 (1e-3 collapses)
        lr_scheduler_type="constant",  # no decay (TRL default: linear to 0 at max_steps)
        max_grad_norm=1.0,  # global gradient-norm clip (0.5..1)
        max_steps=100,  # optimizer steps (100..300 on add2)
        seed=0,  # model init, prompt order and sampling
        # -- batch: G completions per prompt, one update per generated batch
        num_generations=8,  # G, the group size (4..16; GRPO needs >= 2)
        per_device_train_batch_size=per_device,  # this process's share of the step's completions
        gradient_accumulation_steps=1,
        steps_per_generation=1,  # each generated batch is one optimizer step (no micro-batches)
        num_iterations=1,  # mu, updates per batch (DeepSeekMath: 1); > 1 makes the clip bite
        # -- sampling
        max_completion_length=get_task(task_name).max_new_tokens,  # answer, EOS, 1 spare
        temperature=1.0,  # sampling temperature (0.7..1.2); training log-probs use logits / T too
        # -- the GRPO loss: DeepSeekMath defaults, as grpo_edu.losses.policy_loss
        beta=0.04,  # kl_coef, k3 KL to the reference in the loss (0..0.1; TRL default 0)
        epsilon=0.2,  # clip_eps (0.1..0.3); add epsilon_high=0.28 for DAPO's clip-higher
        loss_type="grpo",  # per-sequence mean, then mean (also bnpo, dr_grpo, dapo = TRL default)
        scale_rewards="group",  # group z-score, std with ddof=1, + 1e-4 ("none" = Dr. GRPO)
        importance_sampling_level="token",  # "sequence" = GSPO
        use_bias_correction_kl=False,  # KL times the ratio (TRL default True); False = DeepSeekMath
        disable_dropout=True,  # course convention (the tiny Llama has none; other models may)
        remove_unused_columns=False,  # keep the 'answer' column for the reward functions
        # -- offline: no vLLM server, no tracker, no checkpoints, no Hub
        use_vllm=False,
        report_to="none",
        logging_steps=1,  # one log row per step, like the course's metrics DataFrame
        save_strategy="no",
        push_to_hub=False,
    )
    # transformers >= 5.2 renamed gradient_checkpointing (TRL default True: ~13x slower on this CPU)
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    settings[ckpt] = overrides.pop("gradient_checkpointing", False)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown GRPOConfig fields: {unknown}")
    config = trl.GRPOConfig(**(settings | overrides))
    if config.world_size != n_processes:  # WORLD_SIZE said one thing, accelerate found another
        raise ValueError(
            f"WORLD_SIZE={n_processes} but TRL runs {config.world_size} processes: launch with "
            "torchrun or accelerate launch, which set both"
        )
    return config


def course_decoded(reward_fn: RewardFn, tokenizer) -> RewardFn:
    """``reward_fn`` reading completions decoded from ``completion_ids`` by the course's rule
    (convention 5 of ``grpo_edu.rollout``: stray special tokens written out, not dropped)."""

    @functools.wraps(reward_fn)  # TRL logs rewards under the function's __name__
    def wrapped(prompts, completions, completion_ids=None, **columns):
        if completion_ids is not None:
            completions = decode_completions(tokenizer, completion_ids)
        return reward_fn(prompts, completions, completion_ids=completion_ids, **columns)

    return wrapped


def make_trainer(
    model_or_path="add2",
    tokenizer=None,
    task_name: str = "add2",
    reward_funcs: RewardFn | str | list[RewardFn | str] | None = None,
    *,
    train_dataset=None,
    model_dir: str | Path | None = None,
    **config_overrides,
):
    """A ``trl.GRPOTrainer`` for a course policy on a task's train split.

    - ``model_or_path``: a policy instance (trained in place), a checkpoint directory, or the name
      of a shipped checkpoint (``"add2"``).
    - ``tokenizer``: defaults to ``tokenizer.build_tokenizer()``.
    - ``reward_funcs``: functions or ``rewards.REWARDS`` names; TRL sums them (``reward_weights``).
      Default: ``[correctness_reward]``. Each is wrapped by ``course_decoded``.
    - ``train_dataset``: defaults to ``task_dataset(task_name)``.
    - ``config_overrides``: ``GRPOConfig`` fields, over ``cpu_grpo_config``; without
      ``output_dir`` a temporary directory is used.

    The reference model: with ``beta > 0`` TRL loads it from ``model.config._name_or_path``, i.e.
    from disk. A policy instance is therefore first saved to ``model_dir`` (default
    ``<output_dir>/init_policy``) and pointed there, so the reference is exactly the policy
    passed in, not whatever checkpoint it was once loaded from.
    """
    trl = _require("trl")
    output_dir = config_overrides.pop("output_dir", None) or tempfile.mkdtemp(
        prefix="grpo_edu_trl_"
    )
    args = cpu_grpo_config(output_dir, task_name=task_name, **config_overrides)
    tokenizer = build_tokenizer() if tokenizer is None else tokenizer
    if isinstance(model_or_path, (str, Path)):
        model, _ = load_policy(model_or_path)  # config._name_or_path = its directory
    else:
        model = model_or_path
        if args.beta != 0.0:
            path = save_policy(model, tokenizer, model_dir or Path(output_dir) / "init_policy")
            model.config._name_or_path = str(path)
    if reward_funcs is None:
        reward_funcs = [correctness_reward]
    elif callable(reward_funcs) or isinstance(reward_funcs, str):
        reward_funcs = [reward_funcs]
    funcs = [
        course_decoded(get_reward(f) if isinstance(f, str) else f, tokenizer) for f in reward_funcs
    ]
    return trl.GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=task_dataset(task_name) if train_dataset is None else train_dataset,
        processing_class=tokenizer,
    )


def log_history(trainer) -> pd.DataFrame:
    """TRL's per-step logs as a DataFrame indexed by ``step`` (TRL's metric names as columns)."""
    rows = [row for row in trainer.state.log_history if "loss" in row]  # not the final summary
    return pd.DataFrame(rows).set_index("step")


def train_with_trl(
    model_or_path="add2",
    tokenizer=None,
    task_name: str = "add2",
    reward_funcs: RewardFn | str | list[RewardFn | str] | None = None,
    **config_overrides,
) -> pd.DataFrame:
    """Build a trainer with ``make_trainer``, train it, and return ``log_history(trainer)``.

    A policy instance passed as ``model_or_path`` is the model trained; to keep the trainer
    itself (and the policy loaded from a path), call ``make_trainer`` and ``trainer.train()``.
    """
    trainer = make_trainer(model_or_path, tokenizer, task_name, reward_funcs, **config_overrides)
    trainer.train()
    return log_history(trainer)


def weights_digest(model) -> str:
    """SHA-256 of a model's weights (names and float32 bytes): equal digests, equal weights."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


__all__ = [
    "cpu_grpo_config",
    "log_history",
    "make_trainer",
    "per_device_batch",
    "task_dataset",
    "train_with_trl",
    "weights_digest",
    "world_size",
]
