"""The tiny causal language model, its critic (value model) for PPO, and the frozen reference.

The policy is a real ``transformers`` Llama (the family of DeepSeek-R1's distilled students),
only small: 4 layers of width 128, about 0.8M parameters, dropout off. Because it is a standard
``PreTrainedModel`` it works with ``generate()``, ``save_pretrained`` and TRL's ``GRPOTrainer``.

Checkpoints live in ``data/checkpoints/<name>/`` as ``model.safetensors`` + ``config.json`` +
tokenizer files + ``card.json`` (how it was made and how accurate it is). Nothing is downloaded.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from .tokenizer import build_tokenizer
from .vocab import BOS_ID, EOS_ID, PAD_ID, VOCAB

# transformers >= 5.2x names the KV cache argument (and output) ``cache``; older releases
# ``past_key_values``. Every call that passes a cache uses this name.
CACHE_ARG = (
    "cache"
    if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters
    else "past_key_values"
)
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


@dataclass(frozen=True)
class ModelConfig:
    """Size of the tiny Llama. Defaults give ~0.8M parameters (3.3 MB in float32)."""

    hidden_size: int = 128
    """Width of the residual stream (typical for this course: 64..256)."""
    n_layers: int = 4
    """Transformer blocks (2..8)."""
    n_heads: int = 4
    """Attention heads; ``hidden_size`` must be divisible by it."""
    intermediate_size: int = 384
    """Width of the SwiGLU MLP (usually ~3x ``hidden_size``)."""
    max_position_embeddings: int = 64
    """Longest prompt + completion, in characters."""

    def to_llama(self) -> LlamaConfig:
        if self.hidden_size % self.n_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by n_heads={self.n_heads}"
            )
        return LlamaConfig(
            vocab_size=len(VOCAB),
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.n_layers,
            num_attention_heads=self.n_heads,
            num_key_value_heads=self.n_heads,
            max_position_embeddings=self.max_position_embeddings,
            attention_dropout=0.0,  # dropout off: log-probs must be the same in sampling and training
            tie_word_embeddings=True,
            bos_token_id=BOS_ID,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )


def build_model(config: ModelConfig = ModelConfig(), seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised policy (seeded), in float32 with dropout off."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config.to_llama())
    model.generation_config.pad_token_id = PAD_ID
    return model


def n_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def adam(params, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam(params, **kwargs)``, fused into one kernel per step where this torch
    has one for the parameters' device (torch >= 2.4 on CPU): the same update to float
    rounding, and on this model's 38 small tensors 2.9 ms -> 0.75 ms per step on one core
    (the default runs ~10 small ops per tensor)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or release
        return torch.optim.Adam(params, **kwargs)


def frozen_copy(model: nn.Module) -> nn.Module:
    """The reference policy pi_ref: an in-memory copy with gradients off, in eval mode."""
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


class Critic(nn.Module):
    """PPO's value model V(s_t): the policy's transformer body with a scalar head.

    ``forward`` returns one value per position, (B, T): the value of the state made of the tokens
    up to and including position t. Initialised from the policy's body (the InstructGPT recipe
    initialises the critic from a model of the policy's size), so it costs as much memory as the
    policy: that is the cost GRPO removes.
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.body = LlamaModel(config)
        self.head = nn.Linear(config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, policy: LlamaForCausalLM) -> Critic:
        with torch.device(policy.device):  # built where the policy lives
            critic = cls(policy.config)
        critic.body.load_state_dict(policy.model.state_dict())
        return critic

    def forward(self, input_ids, attention_mask=None, position_ids=None, **cache) -> torch.Tensor:
        """Values (B, T) of every position. ``cache`` (``use_cache`` and a KV ``Cache`` under
        ``CACHE_ARG``) passes through to the body, which fills the cache in place: that is how
        the critic reads a rollout with prefix sharing, like the policy."""
        hidden = self.body(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **cache
        ).last_hidden_state  # (B, T, C)
        return self.head(hidden).squeeze(-1)  # (B, T)


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """The ``torch.device`` for ``device`` (``"auto"``: CUDA when available, else CPU), or a
    ValueError saying why it cannot be used here (no CUDA in this torch build, no such GPU)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}"
        ) from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else "a CUDA build"
            raise ValueError(
                f"device={device!r}, but torch {torch.__version__} ({build}) sees no CUDA GPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA GPU(s) exist"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but the MPS backend is not available here")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {device!r}")
    return dev


def checkpoint_path(name: str) -> Path:
    return CHECKPOINT_DIR / name


def save_policy(model, tokenizer, path: str | Path, card: dict | None = None) -> Path:
    """Write model (safetensors), tokenizer and an optional JSON card to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    if card is not None:
        (path / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def load_card(name_or_path: str | Path) -> dict:
    """The JSON card of a checkpoint (config, steps, seed, accuracies, time)."""
    path = Path(name_or_path)
    path = path if path.exists() else checkpoint_path(str(name_or_path))
    return json.loads((path / "card.json").read_text())


def load_policy(
    name_or_path: str | Path = "add2", device: str | torch.device = "cpu"
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """(model, tokenizer) from a shipped checkpoint name (``"add2"``) or a directory. Offline."""
    if not isinstance(name_or_path, str | Path) or not str(name_or_path):
        shipped = sorted(p.name for p in CHECKPOINT_DIR.glob("*") if p.is_dir())
        raise ValueError(
            f"name_or_path must be a shipped checkpoint name {shipped} or a directory, "
            f"got {name_or_path!r}"
        )
    device = resolve_device(device)
    path = Path(name_or_path)
    if not path.exists():
        path = checkpoint_path(str(name_or_path))
    if not (path / "model.safetensors").exists():
        shipped = sorted(p.name for p in CHECKPOINT_DIR.glob("*") if p.is_dir())
        raise ValueError(
            f"no checkpoint {str(name_or_path)!r}: expected a directory with model.safetensors "
            f"or one of the shipped names {shipped}"
        )
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights 0/38" bar is noise in notebook outputs
    try:
        model = LlamaForCausalLM.from_pretrained(path, local_files_only=True).to(device)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.generation_config.pad_token_id = PAD_ID
    return model, build_tokenizer()


def model_config_of(model: LlamaForCausalLM) -> dict:
    """The ``ModelConfig`` fields of a policy, for cards and reports."""
    c = model.config
    return asdict(
        ModelConfig(
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.intermediate_size,
            c.max_position_embeddings,
        )
    )
