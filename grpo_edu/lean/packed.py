"""The training forward on packed tokens, with prefix sharing: ``shared_prefix_forward``.

The per-token ops run on the N packed tokens (each prompt once, then only the completion tokens
some real position needs); attention runs in the group layout (``Layout``): one sequence per
distinct prompt, its P prompt tokens then each of its rows' fed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .ops import additive_mask, attention, blocks, embed, head, heads
from .weights import Weights, pack_weights, rope_tables


@dataclass
class Layout:
    """Where each packed token sits in the group layout that attention runs on.

    Attention runs per group: one sequence per distinct prompt, its P prompt tokens then, for
    each of its completions (``slots``), the T fed completion tokens: (n, L), L = P + slots*T.
    The per-token ops run on the N packed tokens, which hold only what is needed (the prompts
    and every completion token before a real one); ``to_group`` (n*L,) and ``from_group`` (N,)
    index between the two (None: the two orders are the same)."""

    n: int
    to_group: Tensor | None
    from_group: Tensor | None
    cos: Tensor  # (n, L, 1, d) at each group position's position
    sin: Tensor
    bias: Tensor  # (n*H, L, L)


def attend(w: Weights, layout: Layout, on_kv=None):
    """The ``attend`` of ``blocks`` for a ``Layout``; ``on_kv(layer, k, v)`` sees every layer's
    rotated keys and values (n, H, L, d) (the decoder fills its cache with them)."""
    H, d = w.n_heads, w.head_dim

    def attend(layer, qkv):  # (N, 3*H*d) -> (N, H*d)
        if layout.to_group is not None:
            qkv = qkv.index_select(0, layout.to_group)  # (n*L, 3*H*d)
        q, k, v = heads(w, qkv, layout.n, layout.cos, layout.sin)  # (n, H, L, d) each
        if on_kv is not None:
            on_kv(layer, k, v)
        out = attention(q, k, v, layout.bias).transpose(1, 2).reshape(-1, H * d)  # (n*L, Hd)
        return out if layout.from_group is None else out.index_select(0, layout.from_group)

    return attend


def prefix_mask_ok(completion_mask: Tensor) -> bool:
    """True when every row's mask is ones then zeros (what ``rollout`` makes); the packed
    forward relies on it, any other mask takes the transformers path."""
    mask = completion_mask > 0
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def shared_prefix_forward(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    prompt_positions: Tensor,
    rows: Tensor,
    completion_ids: Tensor,
    completion_mask: Tensor,
) -> Tensor:
    """The model's output before each completion token, with prefix sharing, on packed tokens.

    ``prompt_*`` are (n, P), one row per distinct prompt (left-padded, positions as in the full
    forward); ``rows`` (b,) says which prompt each completion continues; ``completion_*`` are
    (b, T), the sampled completions and their masks (ones up to the EOS, then zeros). Returns
    (b, T, ...): position t holds the output that predicts token t (logits (V), the critic's
    value, or hidden states (C)) and 0 where the mask is 0, where nothing is predicted; only the
    tokens some real position needs are computed. Equals the model run on each row's prompt +
    completion to float rounding, and is differentiable in the parameters.
    """
    w = pack_weights(model)
    n, P = prompt_ids.shape
    b, T = completion_ids.shape[0], completion_ids.shape[1] - 1  # T: tokens that can be fed
    device, nP = prompt_ids.device, n * P
    # 1. packed tokens: the prompts, then every fed token j whose next token j+1 is real
    needed = completion_mask[:, 1:] > 0  # (b, T)
    flat = needed.reshape(-1)
    rank = flat.long().cumsum(0).view(b, T) - 1  # (b, T) packed index - nP of a needed token
    ids = torch.cat([prompt_ids.reshape(-1), completion_ids[:, :-1].reshape(-1)[flat]])  # (N,)
    start = prompt_mask.sum(-1)[rows][:, None]  # (b, 1) position of each row's first token
    fed_positions = (start + torch.arange(T, device=device)).reshape(-1)[flat]  # (M,)
    positions = torch.cat([prompt_positions.reshape(-1), fed_positions])  # (N,)
    N = len(ids)
    # 2. group layout: group i = its prompt, then each of its rows' T fed tokens (slot order)
    slot = (rows[:, None] == rows[None, :]).tril(-1).sum(1)  # (b,) rank of a row in its group
    slots = int(slot.max()) + 1 if b else 1
    L = P + slots * T
    group_index = torch.zeros(n, slots, T, dtype=torch.long, device=device)
    group_index[rows, slot] = torch.where(needed, nP + rank, 0)  # dummies read token 0
    group_valid = torch.zeros(n, slots, T, dtype=torch.bool, device=device)
    group_valid[rows, slot] = needed
    prompt_index = torch.arange(nP, device=device).view(n, P)
    to_group = torch.cat([prompt_index, group_index.view(n, -1)], 1).view(-1)  # (n*L,)
    base = (rows * L + P + slot * T)[:, None] + torch.arange(T, device=device)  # (b, T)
    prompt_base = (torch.arange(n, device=device) * L)[:, None] + torch.arange(P, device=device)
    from_group = torch.cat([prompt_base.reshape(-1), base.reshape(-1)[flat]])  # (N,)
    # 3. who sees whom in a group: prompt tokens their earlier real ones (a pad itself); a
    #    completion token its prompt's real tokens and its own row's earlier needed tokens
    c = torch.arange(L, device=device)
    is_p, s, j = c < P, (c - P).div(max(T, 1), rounding_mode="floor"), (c - P) % max(T, 1)
    earlier = c[None, :] <= c[:, None]  # (L, L) key at or before query
    same_row = (s[:, None] == s[None, :]) & (j[None, :] <= j[:, None])
    static = torch.where(is_p[:, None], is_p[None, :] & earlier, is_p[None, :] | same_row)
    key_valid = torch.cat([prompt_mask.bool(), group_valid.view(n, -1)], 1)  # (n, L)
    allowed = (static & key_valid[:, None, :]) | torch.eye(L, dtype=torch.bool, device=device)
    cos_table, sin_table = rope_tables(w, P + T)  # every position < P + T
    group_positions = positions[to_group]  # (n*L,)
    shape = (n, L, 1, w.head_dim)
    layout = Layout(
        n,
        to_group,
        from_group,
        cos_table[group_positions].view(shape),
        sin_table[group_positions].view(shape),
        additive_mask(allowed, w.n_heads),
    )
    # 4. run, then place each output before the token it predicts (0 where nothing is)
    out = head(w, blocks(w, embed(w, ids), attend(w, layout)))  # (N, ...)
    out = torch.cat([out, out.new_zeros((1,) + out.shape[1:])])  # row N: the zero output
    first = (rows * P + P - 1)[:, None]  # (b, 1) each row's last prompt token
    take = torch.cat([first, torch.where(needed, nP + rank, N)], 1)  # (b, 1 + T)
    return out[take]  # (b, 1 + T, ...)
