"""Memory of the training state: measured tensor by tensor, and predicted from parameter counts.

What a step must keep in memory besides activations, for N policy parameters in float32 with
Adam (two moments per trainable parameter)::

    GRPO   policy 4N + gradients 4N + Adam 8N + reference 4N                 = 20N bytes
    PPO    policy 4N + critic 4N' + gradients 4(N+N') + Adam 8(N+N') + ref 4N  = 20N + 16N' bytes

With a critic of the policy's size (N' ~ N) PPO holds 36N bytes, so GRPO needs 20/36 = 0.56x:
dropping the value network is where GRPO's memory saving comes from (DeepSeekMath sec. 4.1).
Activations come on top and scale with batch x length; they are the same for the policy in both
algorithms, and PPO adds the critic's.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

MB = 2**20


def tensor_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of distinct storages among ``tensors`` (shared or tied tensors counted once)."""
    seen, total = set(), 0
    for t in tensors:
        if t is None or not isinstance(t, torch.Tensor):
            continue
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def measure_training_state(
    policy: nn.Module,
    ref_model: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    critic: nn.Module | None = None,
) -> dict[str, int]:
    """Bytes held by each part of the training state, measured on the live tensors.

    Call after at least one optimizer step (before it, gradients and Adam moments do not exist).
    """
    modules = [policy] + ([critic] if critic is not None else [])
    params = [p for m in modules for p in m.parameters()]
    state = {
        "policy": tensor_bytes(policy.parameters()),
        "critic": tensor_bytes(critic.parameters()) if critic is not None else 0,
        "reference": tensor_bytes(ref_model.parameters()) if ref_model is not None else 0,
        "gradients": tensor_bytes(p.grad for p in params),
        "optimizer": tensor_bytes(
            v for s in optimizer.state.values() for v in s.values() if v.dim() > 0
        ),
    }
    state["total"] = sum(state.values())
    return state


def analytic_training_state(
    n_policy: int, n_critic: int = 0, with_reference: bool = True, bytes_per_param: int = 4
) -> dict[str, int]:
    """The same account predicted from parameter counts (float32, Adam: 2 moments per parameter)."""
    trainable = n_policy + n_critic
    state = {
        "policy": bytes_per_param * n_policy,
        "critic": bytes_per_param * n_critic,
        "reference": bytes_per_param * n_policy if with_reference else 0,
        "gradients": bytes_per_param * trainable,
        "optimizer": 2 * bytes_per_param * trainable,
    }
    state["total"] = sum(state.values())
    return state
