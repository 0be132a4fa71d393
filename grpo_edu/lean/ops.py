"""The ops of the lean forward: embedding, RMSNorm, the decoder layers, attention, the head.

Every function takes a ``Weights`` (``weights.pack_weights``) and tensors; ``blocks`` runs the
layers over packed tokens and leaves attention to an ``attend(layer, qkv)`` that knows where each
token sits (``packed`` and ``decoder`` supply it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .weights import Weights


def embed(w: Weights, ids: Tensor) -> Tensor:
    return F.embedding(ids, w.embed, w.padding_idx)


class RMSNormFunction(torch.autograd.Function):
    """y = w * x / sqrt(mean(x^2) + eps) with a hand-written backward (9 ops, not the ~20 of
    autograd through ``F.rms_norm``'s decomposition):
    dx = r * (g - x_hat * mean(g * x_hat)), g = dy * w, x_hat = x * r;  dw = sum(dy * x_hat)."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        r = x.pow(2).mean(-1, keepdim=True).add_(eps).rsqrt_()  # (N, 1)
        x_hat = x * r
        ctx.save_for_backward(x_hat, r, weight)
        return x_hat * weight

    @staticmethod
    def backward(ctx, dy):
        x_hat, r, weight = ctx.saved_tensors
        g = dy * weight
        dx = (g - x_hat * (g * x_hat).mean(-1, keepdim=True)).mul_(r)
        dw = (dy * x_hat).reshape(-1, x_hat.shape[-1]).sum(0) if ctx.needs_input_grad[1] else None
        return dx, dw, None


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm as transformers' ``LlamaRMSNorm`` (float32): ``F.rms_norm``'s one fused kernel
    without gradients, ``RMSNormFunction`` with them."""
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if grad or not hasattr(F, "rms_norm"):  # F.rms_norm: torch >= 2.4
        return RMSNormFunction.apply(x, weight, eps)
    return F.rms_norm(x, weight.shape, weight, eps)


def blocks(w: Weights, x: Tensor, attend) -> Tensor:
    """Every decoder layer over packed tokens ``x`` (N, C); ``attend(layer, qkv)`` turns the
    (N, 3*H*d) projections into the (N, H*d) attention output (it knows the tokens' layout)."""
    for i, (ln1, w_qkv, w_o, ln2, w_gate_up, w_down) in enumerate(w.layers):
        qkv = rms_norm(x, ln1, w.eps) @ w_qkv  # (N, 3*H*d): q, k, v in one matmul
        x = torch.addmm(x, attend(i, qkv), w_o)  # x + attention @ W_o^T
        gate, up = (rms_norm(x, ln2, w.eps) @ w_gate_up).chunk(2, -1)  # (N, I) each
        x = torch.addmm(x, F.silu(gate) * up, w_down)  # x + SwiGLU @ W_down^T
    return x


def head(w: Weights, hidden: Tensor) -> Tensor:
    """Final norm and head: logits (..., V), the critic's values (...), or hidden states."""
    hidden = rms_norm(hidden, w.norm, w.eps)
    if w.head is None:
        return hidden  # a bare body: its last_hidden_state
    out = F.linear(hidden, w.head, w.head_bias)
    return out.squeeze(-1) if w.is_critic else out


def heads(w: Weights, qkv: Tensor, n: int, cos: Tensor, sin: Tensor):
    """(n*L, 3*H*d) projections in group layout -> q, k, v, each (n, H, L, d), with the rotary
    embedding applied to q and k: x cos + rotate_half(x) sin, rotate_half(x) = x.roll(d/2) with
    the sign folded into ``sin`` (``cos``/``sin`` are (n, L, 1, d))."""
    H, d = w.n_heads, w.head_dim
    qk, v = qkv.view(n, -1, 3 * H, d).split([2 * H, H], 2)  # (n, L, 2H, d), (n, L, H, d)
    q, k = (qk * cos + qk.roll(d // 2, -1) * sin).split([H, H], 2)  # RoPE on q and k at once
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (n, H, L, d) each


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d) + bias) v for q (n, H, Lq, d) and k, v (n, H, Lk, d); ``bias``
    (n*H, Lq, Lk) is 0 where a query may see a key and -inf elsewhere. Written out as two
    batched matmuls: on these short sequences that is faster than
    ``F.scaled_dot_product_attention``'s CPU kernels, forward and backward."""
    n, H, Lq, d = q.shape
    q, k, v = (t.reshape(n * H, -1, d) for t in (q, k, v))  # (n*H, L, d)
    scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=d**-0.5)  # (n*H, Lq, Lk)
    return torch.bmm(scores.softmax(-1), v).view(n, H, Lq, d)


def additive_mask(allowed: Tensor, n_heads: int) -> Tensor:
    """(n*H, Lq, Lk) additive attention mask from ``allowed`` (n, Lq, Lk): 0 where allowed,
    -inf elsewhere, repeated for every head."""
    n, Lq, Lk = allowed.shape
    bias = torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed, -torch.inf)
    return bias[:, None].expand(n, n_heads, Lq, Lk).reshape(n * n_heads, Lq, Lk)
