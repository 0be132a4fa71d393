"""The lean forward: the tiny Llama's own weights, run with fewer and larger ops.

At this model's size (width 128, 4 layers, 19 tokens) a step's time went to Python and dispatch
per op, not to matmul FLOPs: one GRPO step through transformers' forward ran ~16,000 ops
(README "Benchmarks"). This package computes the same function as transformers'
``LlamaForCausalLM``, ``LlamaModel`` and ``models.Critic``, from the same parameters (gradients
land in them; checkpoints, TRL and ``save_pretrained`` see one model), with fewer ops and less
work:

- ``ops``: one matmul for q, k, v and one for gate and up (weights concatenated once per call),
  residual adds fused into the output matmuls (``addmm``), ``F.rms_norm`` (a hand-written
  backward when training), rotary embeddings from one cos/sin table, q and k rotated together;
- ``packed.shared_prefix_forward`` (training, reference, critic): every per-token op runs on one
  (N, C) matrix of **packed tokens**: each distinct prompt once (prefix sharing, ``rollout``
  convention 4) and only the completion tokens that some real position needs (nothing after a
  row's EOS). Attention runs per group: one sequence per prompt, its tokens then its rows'
  tokens, each row seeing its prompt and its own earlier tokens;
- ``decoder.Decoder`` (sampling): a **static KV cache**, preallocated for the whole generation
  and written in place (a group's prompt once, then one column per row and token), and rows that
  have finished are left out of the layers.

``supports(model)`` says when this path applies (a float32 Llama of those three kinds with
transformers' default rotary embeddings, no hooks, no attention dropout in training);
anything else (another architecture, a test's stub, bf16) takes the transformers path in
``rollout``/``logprobs``, and ``enabled(False)`` switches this path off to compare. The results
are transformers' to float rounding (fused matmuls and norms round differently in the last
bits): tests/test_lean.py checks values and gradients with left padding, uneven lengths,
prefix sharing and minibatches that cut through groups, and sampling token for token.
"""

from .decoder import Decoder
from .packed import prefix_mask_ok, shared_prefix_forward
from .weights import enabled, supports

__all__ = ["Decoder", "enabled", "prefix_mask_ok", "shared_prefix_forward", "supports"]
