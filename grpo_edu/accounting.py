"""Memory of the training state: measured tensor by tensor, and predicted from parameter counts.

What a step must keep in memory besides activations, for N policy parameters in float32 with
Adam (two moments per trainable parameter)::

    GRPO   policy 4N + gradients 4N + Adam 8N + reference 4N                 = 20N bytes
    PPO    policy 4N + critic 4N' + gradients 4(N+N') + Adam 8(N+N') + ref 4N  = 20N + 16N' bytes

With a critic of the policy's size (N' ~ N) PPO holds 36N bytes, so GRPO needs 20/36 = 0.56x:
dropping the value network is where GRPO's memory saving comes from (DeepSeekMath sec. 4.1).

Activations come on top: what autograd keeps for backward between an update's forward and its
backward. They scale with batch x length, are the same for the policy in both algorithms, and
PPO adds the critic's. ``ActivationMeter`` measures them on a real update (the peak over the
updates it sees); ``with_activations`` adds them to a measured account: the training state
(``total``, the 20N / 36N above) and the state with one update's activations are two figures.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

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


def _storage(t: torch.Tensor) -> tuple[int, int]:
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


class ActivationMeter:
    """Bytes autograd keeps for backward in one optimizer update: the activations.

    ``with ActivationMeter(optimizer) as meter: <one or more updates>`` then ``meter.peak``: the
    largest, over the updates run inside, of the distinct storages saved for backward between
    the update's forward and its ``optimizer.step()``; parameters (held anyway) are not counted.
    Tensors saved by a ``torch.no_grad`` forward (the reference, PPO's old values) do not exist.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.params = {_storage(p) for p in params}
        self.peak, self.current, self.seen = 0, 0, set()

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage(t)
        if key not in self.seen and key not in self.params:
            self.seen.add(key)
            self.current += key[1]
        return t

    def _after_update(self, *args) -> None:
        self.peak, self.current, self.seen = max(self.peak, self.current), 0, set()

    def __enter__(self) -> ActivationMeter:
        self._hooks = saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        self._handle = self.optimizer.register_step_post_hook(self._after_update)
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._handle.remove()
        self._after_update()


def measure_training_state(
    policy: nn.Module,
    ref_model: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    critic: nn.Module | None = None,
) -> dict[str, int]:
    """Bytes held by each part of the training state, measured on the live tensors.

    Call after at least one optimizer step (before it, gradients and Adam moments do not exist).
    ``total`` is parameters + gradients + Adam + reference (+ critic), activations excluded.
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


def with_activations(measured: dict[str, int], activations: int) -> dict[str, int]:
    """The state of ``measure_training_state`` plus one update's activations (bytes):
    ``{"activations": ..., "total": state + activations}``."""
    return {"activations": activations, "total": measured["total"] + activations}


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
