"""Which models the lean forward runs, and one call's view of their parameters.

``supports`` and ``enabled`` decide; ``pack_weights`` concatenates q/k/v and gate/up weights
(transposed for the matmuls) from the model's own parameters, so gradients reach them;
``rope_tables`` are the rotary cos/sin as transformers computes them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import LlamaForCausalLM, LlamaModel

from ..models import Critic

_STATE = {"enabled": True}


@contextmanager
def enabled(on: bool = True):
    """``with lean.enabled(False):`` runs the transformers forward instead (to compare)."""
    before, _STATE["enabled"] = _STATE["enabled"], bool(on)
    try:
        yield
    finally:
        _STATE["enabled"] = before


def model_parts(model) -> tuple[LlamaModel, Tensor | None, Tensor | None, bool] | None:
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
    parts = model_parts(model) if _STATE["enabled"] else None
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
class Weights:
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


def pack_weights(model) -> Weights:
    body, head, head_bias, is_critic = model_parts(model)
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
    return Weights(
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


def rope_tables(w: Weights, n_positions: int) -> tuple[Tensor, Tensor]:
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
