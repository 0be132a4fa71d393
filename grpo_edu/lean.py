"""The lean forward: the tiny Llama's own weights, run with fewer and larger ops.

At this model's size (width 128, 4 layers, 19 tokens) a step's time goes to Python and dispatch
per op, not to matmul FLOPs: transformers' forward is ~20 small ops per layer plus its mask,
cache and output machinery, and one GRPO step ran ~16,000 ops (README "Benchmarks"). This
module computes the same function as transformers' ``LlamaForCausalLM``, ``LlamaModel`` and
``models.Critic``, from the same parameters (gradients land in them; checkpoints, TRL and
``save_pretrained`` see one model), with fewer ops:

- one matmul for q, k, v and one for gate and up (their weights concatenated once per call);
  the residual adds fused into the output matmuls (``addmm``); ``F.rms_norm``;
- rotary embeddings from one cos/sin table per call, q and k rotated by the same three ops;
- ``F.scaled_dot_product_attention`` with boolean masks;
- **packed tokens** (``shared_prefix_forward``): a rollout's n prompts (n, P) and b completions
  (b, T) run through every per-token op as one (n*P + b*T, C) matrix. Only attention sees the
  two parts apart: a prompt attends to itself, a completion to its own prompt's keys (indexed out
  to its row: prefix sharing, ``rollout`` convention 4) and to its own earlier tokens;
- for sampling (``Decoder``), a **static KV cache**: preallocated once for the whole generation
  and written in place, one column per new token, instead of a cache grown by ``cat``.

``supports(model)`` says when this path applies (a float32 Llama of those three kinds with
transformers' default rotary embeddings, no hooks, no attention dropout); anything else (another
architecture, a test's stub, bf16) takes the transformers path in ``rollout``/``logprobs``, and
``enabled(False)`` switches this path off to compare. The results are transformers' to float
rounding (fused matmuls and ``rms_norm`` round differently in the last bits): tests/test_lean.py
checks values and gradients with left padding, uneven lengths and prefix sharing.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import LlamaForCausalLM, LlamaModel

from .models import Critic

_STATE = {"enabled": True}


@contextmanager
def enabled(on: bool = True):
    """``with lean.enabled(False):`` runs the transformers forward instead (to compare)."""
    before, _STATE["enabled"] = _STATE["enabled"], bool(on)
    try:
        yield
    finally:
        _STATE["enabled"] = before


def _parts(model) -> tuple[LlamaModel, Tensor | None, Tensor | None, bool] | None:
    """(body, head weight, head bias, is_critic) of a model this module can run, else None."""
    kind = type(model)  # exact types: a subclass may override forward
    if kind is LlamaForCausalLM:
        head = model.lm_head
        if head.bias is not None:
            return None
        return model.model, head.weight, None, False
    if kind is LlamaModel:
        return model, None, None, False
    if kind is Critic and type(model.body) is LlamaModel:
        return model.body, model.head.weight, model.head.bias, True
    return None


def supports(model) -> bool:
    """True when ``model`` is one this module computes exactly (see the module docstring)."""
    parts = _parts(model) if _STATE["enabled"] else None
    if parts is None:
        return False
    body, c = parts[0], parts[0].config
    attention = body.layers[0].self_attn if len(body.layers) else None
    return bool(
        attention is not None
        and c.hidden_act == "silu"
        and not getattr(c, "attention_bias", False)
        and not getattr(c, "mlp_bias", False)
        and c.num_key_value_heads == c.num_attention_heads
        and getattr(c, "pretraining_tp", 1) == 1
        and getattr(body.rotary_emb, "rope_type", "default") == "default"
        and body.embed_tokens.weight.dtype == torch.float32
        and not (model.training and c.attention_dropout > 0)
        and not getattr(body, "gradient_checkpointing", False)
        and not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    )


@dataclass
class _Weights:
    """One call's view of a model's parameters, packed for the lean ops."""

    embed: Tensor  # (V, C)
    padding_idx: int | None  # nn.Embedding's: no gradient flows into that row from lookups
    layers: list[tuple[Tensor, ...]]  # per layer: ln1, W_qkv^T, W_o^T, ln2, W_gate_up^T, W_down^T
    norm: Tensor  # (C,)
    head: Tensor | None  # (V, C) or the critic's (1, C); None for a bare body
    head_bias: Tensor | None
    is_critic: bool
    eps: float
    n_heads: int
    head_dim: int
    inv_freq: Tensor  # (d/2,) the model's own rotary frequencies
    rope_scaling: float


def _weights(model) -> _Weights:
    body, head, head_bias, is_critic = _parts(model)
    layers = []
    for layer in body.layers:
        a, m = layer.self_attn, layer.mlp
        w_qkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).t()  # (C, 3HD)
        w_gate_up = torch.cat([m.gate_proj.weight, m.up_proj.weight]).t()  # (C, 2I)
        layers.append(
            (
                layer.input_layernorm.weight,
                w_qkv,
                a.o_proj.weight.t(),  # (HD, C)
                layer.post_attention_layernorm.weight,
                w_gate_up,
                m.down_proj.weight.t(),  # (I, C)
            )
        )
    c, rotary = body.config, body.rotary_emb
    return _Weights(
        embed=body.embed_tokens.weight,
        padding_idx=body.embed_tokens.padding_idx,
        layers=layers,
        norm=body.norm.weight,
        head=head,
        head_bias=head_bias,
        is_critic=is_critic,
        eps=body.norm.variance_epsilon,
        n_heads=c.num_attention_heads,
        head_dim=body.layers[0].self_attn.head_dim,
        inv_freq=rotary.inv_freq,
        rope_scaling=float(getattr(rotary, "attention_scaling", 1.0)),
    )


def _rope_tables(w: _Weights, n_positions: int) -> tuple[Tensor, Tensor]:
    """(cos, sin) of positions 0..n_positions-1, each (n_positions, d), as transformers computes
    them; the sin's first half negated, so that rotate_half(x) * sin = x.roll(d/2) * sin."""
    positions = torch.arange(n_positions, device=w.inv_freq.device, dtype=torch.float32)
    freqs = positions[:, None] * w.inv_freq.float()[None, :]  # (L, d/2)
    emb = torch.cat([freqs, freqs], -1)  # (L, d)
    cos, sin = emb.cos(), emb.sin()
    if w.rope_scaling != 1.0:
        cos, sin = cos * w.rope_scaling, sin * w.rope_scaling
    half = w.head_dim // 2
    return cos, torch.cat([-sin[:, :half], sin[:, half:]], -1)  # (L, d), (L, d)


def _embed(w: _Weights, ids: Tensor) -> Tensor:
    return F.embedding(ids, w.embed, w.padding_idx)


class _RMSNorm(torch.autograd.Function):
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


def _rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm as transformers' ``LlamaRMSNorm`` (float32): ``F.rms_norm``'s one fused kernel
    without gradients, ``_RMSNorm`` with them."""
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if grad or not hasattr(F, "rms_norm"):  # F.rms_norm: torch >= 2.4
        return _RMSNorm.apply(x, weight, eps)
    return F.rms_norm(x, weight.shape, weight, eps)


def _blocks(w: _Weights, x: Tensor, attend) -> Tensor:
    """Every decoder layer over packed tokens ``x`` (N, C); ``attend(layer, qkv)`` turns the
    (N, 3*H*d) projections into the (N, H*d) attention output (it knows the tokens' layout)."""
    for i, (ln1, w_qkv, w_o, ln2, w_gate_up, w_down) in enumerate(w.layers):
        qkv = _rms_norm(x, ln1, w.eps) @ w_qkv  # (N, 3*H*d): q, k, v in one matmul
        x = torch.addmm(x, attend(i, qkv), w_o)  # x + attention @ W_o^T
        gate, up = (_rms_norm(x, ln2, w.eps) @ w_gate_up).chunk(2, -1)  # (N, I) each
        x = torch.addmm(x, F.silu(gate) * up, w_down)  # x + SwiGLU @ W_down^T
    return x


def _head(w: _Weights, hidden: Tensor) -> Tensor:
    """Final norm and head: logits (..., V), the critic's values (...), or hidden states."""
    hidden = _rms_norm(hidden, w.norm, w.eps)
    if w.head is None:
        return hidden  # a bare body: its last_hidden_state
    out = F.linear(hidden, w.head, w.head_bias)
    return out.squeeze(-1) if w.is_critic else out


def _heads(w: _Weights, qkv: Tensor, n: int, cos: Tensor, sin: Tensor):
    """(n*L, 3*H*d) projections in group layout -> q, k, v, each (n, H, L, d), with the rotary
    embedding applied to q and k: x cos + rotate_half(x) sin, rotate_half(x) = x.roll(d/2) with
    the sign folded into ``sin`` (``cos``/``sin`` are (n, L, 1, d))."""
    H, d = w.n_heads, w.head_dim
    qk, v = qkv.view(n, -1, 3 * H, d).split([2 * H, H], 2)  # (n, L, 2H, d), (n, L, H, d)
    q, k = (qk * cos + qk.roll(d // 2, -1) * sin).split([H, H], 2)  # RoPE on q and k at once
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (n, H, L, d) each


def _attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d) + bias) v for q (n, H, Lq, d) and k, v (n, H, Lk, d); ``bias``
    (n*H, Lq, Lk) is 0 where a query may see a key and -inf elsewhere. Written out as two
    batched matmuls: on these short sequences that is faster than
    ``F.scaled_dot_product_attention``'s CPU kernels, forward and backward."""
    n, H, Lq, d = q.shape
    q, k, v = (t.reshape(n * H, -1, d) for t in (q, k, v))  # (n*H, L, d)
    scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=d**-0.5)  # (n*H, Lq, Lk)
    return torch.bmm(scores.softmax(-1), v).view(n, H, Lq, d)


def _bias(allowed: Tensor, n_heads: int) -> Tensor:
    """(n*H, Lq, Lk) additive attention mask from ``allowed`` (n, Lq, Lk): 0 where allowed,
    -inf elsewhere, repeated for every head."""
    n, Lq, Lk = allowed.shape
    bias = torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed, -torch.inf)
    return bias[:, None].expand(n, n_heads, Lq, Lk).reshape(n * n_heads, Lq, Lk)


@dataclass
class _Layout:
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


def _attend(w: _Weights, layout: _Layout, on_kv=None):
    """The ``attend`` of ``_blocks`` for a ``_Layout``; ``on_kv(layer, k, v)`` sees every layer's
    rotated keys and values (n, H, L, d) (the decoder fills its cache with them)."""
    H, d = w.n_heads, w.head_dim

    def attend(layer, qkv):  # (N, 3*H*d) -> (N, H*d)
        if layout.to_group is not None:
            qkv = qkv.index_select(0, layout.to_group)  # (n*L, 3*H*d)
        q, k, v = _heads(w, qkv, layout.n, layout.cos, layout.sin)  # (n, H, L, d) each
        if on_kv is not None:
            on_kv(layer, k, v)
        out = _attention(q, k, v, layout.bias).transpose(1, 2).reshape(-1, H * d)  # (n*L, Hd)
        return out if layout.from_group is None else out.index_select(0, layout.from_group)

    return attend


def _prompt_layout(w, prompt_mask, prompt_positions, cos_table, sin_table) -> _Layout:
    """The layout of prompts alone (sampling's first pass): packed order is group order."""
    n, P = prompt_mask.shape
    causal = torch.ones(P, P, dtype=torch.bool, device=prompt_mask.device).tril()
    eye = torch.eye(P, dtype=torch.bool, device=prompt_mask.device)
    allowed = (causal & prompt_mask.bool()[:, None, :]) | eye  # a pad sees itself: no empty row
    shape = (n, P, 1, w.head_dim)
    cos, sin = cos_table[prompt_positions].view(shape), sin_table[prompt_positions].view(shape)
    return _Layout(n, None, None, cos, sin, _bias(allowed, w.n_heads))


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
    w = _weights(model)
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
    cos_table, sin_table = _rope_tables(w, P + T)  # every position < P + T
    group_positions = positions[to_group]  # (n*L,)
    shape = (n, L, 1, w.head_dim)
    layout = _Layout(
        n,
        to_group,
        from_group,
        cos_table[group_positions].view(shape),
        sin_table[group_positions].view(shape),
        _bias(allowed, w.n_heads),
    )
    # 4. run, then place each output before the token it predicts (0 where nothing is)
    out = _head(w, _blocks(w, _embed(w, ids), _attend(w, layout)))  # (N, ...)
    out = torch.cat([out, out.new_zeros((1,) + out.shape[1:])])  # row N: the zero output
    first = (rows * P + P - 1)[:, None]  # (b, 1) each row's last prompt token
    take = torch.cat([first, torch.where(needed, nP + rank, N)], 1)  # (b, 1 + T)
    return out[take]  # (b, 1 + T, ...)


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
        self.w = w = _weights(model)
        n, P = prompt_ids.shape
        G, device = group_size, prompt_ids.device
        S = P + G * max(max_new_tokens - 1, 0)  # the last sampled token is never fed back
        shape = (len(w.layers), n, w.n_heads, S, w.head_dim)
        self.k, self.v = w.embed.new_empty(shape), w.embed.new_empty(shape)  # (layers, n, H, S, d)
        own = torch.arange(S - P, device=device) % G == torch.arange(G, device=device)[:, None]
        allowed = torch.cat(
            [prompt_mask.bool()[:, None, :].expand(n, G, P), own.expand(n, G, -1)], -1
        )
        self.bias = _bias(allowed, w.n_heads)  # (n*H, G, S)
        self.cos, self.sin = _rope_tables(w, S + 1)
        self.start = prompt_mask.sum(-1).repeat_interleave(G)  # (B,) first new token's position
        self.n, self.P, self.G = n, P, G

        def fill(layer, k, v):  # (n, H, P, d): the prompts' keys and values, once per group
            self.k[layer, :, :, :P] = k
            self.v[layer, :, :, :P] = v

        layout = _prompt_layout(w, prompt_mask, prompt_positions, self.cos, self.sin)
        x = _blocks(w, _embed(w, prompt_ids.reshape(-1)), _attend(w, layout, fill))  # (nP, C)
        self.first = _head(w, x.view(n, P, -1)[:, -1]).repeat_interleave(G, 0)  # (B, V)

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
            q, k, v = _heads(w, qkv, n, cos, sin)  # (n, H, G, d)
            self.k[layer, :, :, end - G : end] = k
            self.v[layer, :, :, end - G : end] = v
            keys, values = self.k[layer, :, :, :end], self.v[layer, :, :, :end]
            out = _attention(q, keys, values, bias).transpose(1, 2).reshape(B, -1)  # (B, H*d)
            return out if idx is None else out.index_select(0, idx)

        fed = token if idx is None else token.index_select(0, idx)  # (A,)
        out = _head(w, _blocks(w, _embed(w, fed), attend))  # (A, V)
        return out if idx is None else out.new_zeros(B, out.shape[1]).index_copy_(0, idx, out)
