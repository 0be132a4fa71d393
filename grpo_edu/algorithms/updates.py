"""The optimizer loop every step function shares: which rows each update sees, and the update.

for iteration, rows in update_schedule(config, B, generator):   # mu x n_minibatches
    loss = ...                                                  # the algorithm's loss
    grad_norm = optimizer_step(params, optimizer, loss, config.max_grad_norm)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def minibatches(
    n_rows: int, n_minibatches: int, generator: torch.Generator | None, device=None
) -> tuple[torch.Tensor, ...]:
    """``n_minibatches`` chunks of row indices on ``device``: shuffled by ``generator`` (on its
    own device, the CPU in training) when more than one."""
    if n_minibatches > n_rows:
        raise ValueError(f"n_minibatches={n_minibatches} exceeds the batch's {n_rows} rows")
    if n_minibatches > 1:
        where = generator.device if generator is not None else "cpu"
        order = torch.randperm(n_rows, generator=generator, device=where).to(device)
    else:
        order = torch.arange(n_rows, device=device)
    return order.chunk(n_minibatches)


def update_schedule(
    config, n_rows: int, generator: torch.Generator | None, device=None
) -> Iterator[tuple[int, torch.Tensor]]:
    """(iteration, rows) of every optimizer update of one step: ``config.mu`` passes over the
    batch, each cut into ``config.n_minibatches`` minibatches (reshuffled every pass)."""
    for iteration in range(config.mu):
        for rows in minibatches(n_rows, config.n_minibatches, generator, device):
            yield iteration, rows


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    """Every parameter the optimizer updates (the policy's, and PPO's critic's)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def optimizer_step(params, optimizer, loss: torch.Tensor, max_grad_norm: float) -> float:
    """One optimizer step on ``loss``; returns the gradient norm before clipping (0 = no clip)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(
        params, max_grad_norm if max_grad_norm > 0 else float("inf")
    )
    optimizer.step()
    return norm.item()
