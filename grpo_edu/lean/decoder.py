"""Sampling's forward: ``Decoder``, each prompt once, then one token per row over a static KV
cache preallocated for the whole generation and written in place.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .ops import additive_mask, attention, blocks, embed, head, heads
from .packed import Layout, attend
from .weights import pack_weights, rope_tables


def prompt_layout(w, prompt_mask, prompt_positions, cos_table, sin_table) -> Layout:
    """The layout of prompts alone (sampling's first pass): packed order is group order."""
    n, P = prompt_mask.shape
    causal = torch.ones(P, P, dtype=torch.bool, device=prompt_mask.device).tril()
    eye = torch.eye(P, dtype=torch.bool, device=prompt_mask.device)
    allowed = (causal & prompt_mask.bool()[:, None, :]) | eye  # a pad sees itself: no empty row
    shape = (n, P, 1, w.head_dim)
    cos, sin = cos_table[prompt_positions].view(shape), sin_table[prompt_positions].view(shape)
    return Layout(n, None, None, cos, sin, additive_mask(allowed, w.n_heads))


class Decoder:
    """Sampling's forward: each prompt once, then one token per row per call, over a static KV
    cache preallocated for ``max_new_tokens`` and written in place.

    ``Decoder(model, prompt_ids, prompt_mask, prompt_positions, group_size, max_new_tokens)``
    runs the (n, P) prompts once; their keys and values fill the first P columns of each group's
    cache, shared by its ``group_size`` = G rows (prefix sharing). The B = n*G rows are
    prompt-major; ``first`` is the (B, V) output at each row's last prompt token, and
    ``step(token, t)`` feeds token number t (B,) of every row and returns the (B, V) output.
    Cache column P + t*G + g holds row g's token t; a row sees its prompt and its own tokens.
    """

    def __init__(
        self, model, prompt_ids, prompt_mask, prompt_positions, group_size, max_new_tokens
    ):
        self.w = w = pack_weights(model)
        n, P = prompt_ids.shape
        G, device = group_size, prompt_ids.device
        S = P + G * max(max_new_tokens - 1, 0)  # the last sampled token is never fed back
        shape = (len(w.layers), n, w.n_heads, S, w.head_dim)
        self.k, self.v = w.embed.new_empty(shape), w.embed.new_empty(shape)  # (layers, n, H, S, d)
        own = torch.arange(S - P, device=device) % G == torch.arange(G, device=device)[:, None]
        allowed = torch.cat(
            [prompt_mask.bool()[:, None, :].expand(n, G, P), own.expand(n, G, -1)], -1
        )
        self.bias = additive_mask(allowed, w.n_heads)  # (n*H, G, S)
        self.cos, self.sin = rope_tables(w, S + 1)
        self.start = prompt_mask.sum(-1).repeat_interleave(G)  # (B,) first new token's position
        self.n, self.P, self.G = n, P, G

        def fill(layer, k, v):  # (n, H, P, d): the prompts' keys and values, once per group
            self.k[layer, :, :, :P] = k
            self.v[layer, :, :, :P] = v

        layout = prompt_layout(w, prompt_mask, prompt_positions, self.cos, self.sin)
        x = blocks(w, embed(w, prompt_ids.reshape(-1)), attend(w, layout, fill))  # (nP, C)
        self.first = head(w, x.view(n, P, -1)[:, -1]).repeat_interleave(G, 0)  # (B, V)

    def step(self, token: Tensor, t: int, active: Tensor | None = None) -> Tensor:
        """Feed token number ``t`` (0 = the first sampled one) of every row: the next output.

        ``active`` (B,) bool marks the rows still generating: only they run through the layers
        (a finished row's output is 0, and never used); None: all rows."""
        w, n, G = self.w, self.n, self.G
        B = n * G
        end = self.P + (t + 1) * G  # cache columns in use after this token
        shape = (n, G, 1, w.head_dim)
        position = self.start + t  # (B,)
        cos, sin = self.cos[position].view(shape), self.sin[position].view(shape)
        bias = self.bias[..., :end]  # (n*H, G, end)
        idx = None if active is None or bool(active.all()) else active.nonzero().squeeze(1)

        def attend(layer, qkv):  # (A, 3*H*d) of the A active rows -> (A, H*d)
            if idx is not None:  # to all B rows (finished ones 0) for the group layout
                qkv = qkv.new_zeros(B, qkv.shape[1]).index_copy_(0, idx, qkv)
            q, k, v = heads(w, qkv, n, cos, sin)  # (n, H, G, d)
            self.k[layer, :, :, end - G : end] = k
            self.v[layer, :, :, end - G : end] = v
            keys, values = self.k[layer, :, :, :end], self.v[layer, :, :, :end]
            out = attention(q, keys, values, bias).transpose(1, 2).reshape(B, -1)  # (B, H*d)
            return out if idx is None else out.index_select(0, idx)

        fed = token if idx is None else token.index_select(0, idx)  # (A,)
        out = head(w, blocks(w, embed(w, fed), attend))  # (A, V)
        return out if idx is None else out.new_zeros(B, out.shape[1]).index_copy_(0, idx, out)
