"""RexBERT's building blocks: embeddings, GeGLU MLP, rotary tables, attention and the encoder layer.

Module and parameter names equal transformers' ModernBERT, so state dicts line up key for key.
Layers run on the unpadded token stream (`unpadding.UnpaddedBatch`), or on the padded batch as it
is while a model is exported or traced (`unpadding.StaticBatch`).

This file travels to the Hub as remote code: it may import only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update

from .attention_rexbert import ATTENTION_FUNCTIONS, apply_rotary, padded_attention
from .configuration_rexbert import RexBertConfig


class RexBertEmbeddings(nn.Module):
    """Token embeddings -> LayerNorm -> dropout; no positions (RoPE) and no token types."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None):
        embeds = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return self.drop(self.norm(embeds))


class RexBertMLP(nn.Module):
    """GeGLU: `Wi` projects to 2 x intermediate, `gelu(input) * gate`, `Wo` projects back."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = ACT2FN[config.hidden_activation]
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        inputs, gate = self.Wi(hidden_states).chunk(2, dim=-1)
        return self.Wo(self.drop(self.act(inputs) * gate))


class RexBertRotaryEmbedding(nn.Module):
    """cos/sin per token (half head dim) and layer type; theta and scaling come from `config.rope_parameters`."""

    def __init__(self, config: RexBertConfig, device: torch.device | None = None):
        super().__init__()
        self.config = config
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.layer_types = sorted(set(config.layer_types))
        self.rope_type = {t: config.rope_parameters[t].get("rope_type", "default") for t in self.layer_types}
        for layer_type in self.layer_types:
            inv_freq, scaling = self.compute_inv_freq(config, layer_type, device)
            self.register_buffer(f"{layer_type}_inv_freq", inv_freq, persistent=False)
            self.register_buffer(f"{layer_type}_original_inv_freq", inv_freq.clone(), persistent=False)
            setattr(self, f"{layer_type}_attention_scaling", scaling)

    @staticmethod
    def compute_inv_freq(config: RexBertConfig, layer_type: str, device=None) -> tuple[torch.Tensor, float]:
        rope_type = config.rope_parameters[layer_type].get("rope_type", "default")
        if rope_type != "default":
            return ROPE_INIT_FUNCTIONS[rope_type](config, device, layer_type=layer_type)
        base = config.rope_parameters[layer_type]["rope_theta"]
        dim = config.hidden_size // config.num_attention_heads
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float, device=device) / dim))
        return inv_freq, 1.0

    @torch.no_grad()
    @dynamic_rope_update  # only acts for rope types that rescale with the sequence length
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor, layer_type: str):
        inv_freq = getattr(self, f"{layer_type}_inv_freq")
        scaling = getattr(self, f"{layer_type}_attention_scaling")
        freqs = position_ids[:, None].float() * inv_freq.to(device=x.device, dtype=torch.float)[None, :]
        return freqs.cos() * scaling, freqs.sin() * scaling  # (T, head_dim / 2) each


class RexBertAttention(nn.Module):
    """Fused QKV -> RoPE -> attention within each document (global, or a +-64-token local band) -> Wo."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scale = self.head_dim**-0.5
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.out_drop = nn.Dropout(config.attention_dropout) if config.attention_dropout > 0 else nn.Identity()
        is_local = config.layer_types[layer_idx] == "sliding_attention"
        self.half_window = config.local_attention // 2 if is_local else None

    def forward(self, hidden_states: torch.Tensor, batch, rotary: tuple[torch.Tensor, torch.Tensor],
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the attention output on the stream and, with `output_attentions`, the attention
        probabilities `(batch, heads, seq, seq)` as stock ModernBERT's eager attention gives them."""
        qkv = self.Wqkv(hidden_states).view(-1, 3, self.num_heads, self.head_dim)
        q, k, v = apply_rotary(qkv, *rotary)
        dropout = self.config.attention_dropout if self.training else 0.0
        probs = None
        if output_attentions or batch.is_static:  # padded rectangles: maps to return, or shapes fixed for export
            out, probs = padded_attention(q, k, v, batch, self.half_window, dropout, self.scale, output_attentions)
        else:
            attend = ATTENTION_FUNCTIONS[self.config._attn_implementation]
            out = attend(q, k, v, batch, self.half_window, dropout, self.scale,
                         deterministic=self.config.deterministic_flash_attn)
        return self.out_drop(self.Wo(out)), probs


class RexBertEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm block; layer 0 has no attention norm (the embedding norm plays that role)."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        self.attn_norm = (
            nn.Identity() if layer_idx == 0
            else nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        )
        self.attn = RexBertAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = RexBertMLP(config)

    def forward(self, hidden_states: torch.Tensor, batch, rotary: tuple[torch.Tensor, torch.Tensor],
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attn(self.attn_norm(hidden_states), batch, rotary, output_attentions)
        hidden_states = hidden_states + attended
        del attended  # freed before the MLP runs, as a temporary would be: it sets the inference peak
        return hidden_states + self.mlp(self.mlp_norm(hidden_states)), probs


class RexBertPredictionHead(nn.Module):
    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, config.classifier_bias)
        self.act = ACT2FN[config.classifier_activation]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))
