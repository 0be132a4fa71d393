"""grpo_edu: GRPO vs PPO, step by step, on a tiny language model that learns arithmetic.

The library follows the data flow of the course, one module per stage::

    vocab -> tasks -> rewards -> tokenizer -> models -> lean -> masked -> rollout -> logprobs
          -> advantages -> losses -> algorithms -> trainer -> evaluate -> compare
          -> plots -> explain -> widgets -> exercises -> cli

A module imports only from the stages before it. ``algorithms`` and ``trainer`` are packages of
one concern per file (their ``__init__`` lists them).

``load_policy(name)`` is the usual entry point: the shipped warm-start policy and its tokenizer.
"""

__version__ = "0.1.0"


def load_policy(name: str = "add2", device: str = "cpu"):
    """(model, tokenizer) of the shipped warm-start checkpoint ``data/checkpoints/<name>``."""
    from .models import load_policy as _load_policy

    return _load_policy(name, device=device)


__all__ = ["load_policy", "__version__"]
