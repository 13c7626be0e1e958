"""RexBERT: a ModernBERT-architecture encoder that removes padding once and keeps it out.

State-dict keys equal transformers' `ModernBertForMaskedLM`, so ModernBERT, Ettin and released
RexBERT weights load unchanged. Inputs are unpadded before the embedding lookup (labels too),
every layer runs on the real tokens only, and outputs are padded back to `(batch, seq, ...)` at
the very end. With `labels`, the MLM head runs on the masked positions only.

This file travels to the Hub as remote code: it may import only torch and transformers.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# isort: off
# The config module first: on transformers 4.x its import stops with a message naming the version needed.
from .configuration_rexbert import RexBertConfig, check_attn_implementation
# isort: on
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple

from .attention_rexbert import ATTENTION_FUNCTIONS, apply_rotary, flash_attn_varlen_kernel
from .unpadding import UnpaddedBatch, unpad_inputs

logger = logging.get_logger(__name__)


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

    def forward(self, hidden_states: torch.Tensor, batch: UnpaddedBatch, rotary: tuple[torch.Tensor, torch.Tensor]):
        qkv = self.Wqkv(hidden_states).view(-1, 3, self.num_heads, self.head_dim)
        q, k, v = apply_rotary(qkv, *rotary)
        attend = ATTENTION_FUNCTIONS[self.config._attn_implementation]
        out = attend(
            q, k, v, batch, self.half_window, self.config.attention_dropout if self.training else 0.0, self.scale,
            deterministic=self.config.deterministic_flash_attn,
        )
        return self.out_drop(self.Wo(out))


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

    def forward(self, hidden_states: torch.Tensor, batch: UnpaddedBatch, rotary: tuple[torch.Tensor, torch.Tensor]):
        hidden_states = hidden_states + self.attn(self.attn_norm(hidden_states), batch, rotary)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class RexBertPredictionHead(nn.Module):
    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, config.classifier_bias)
        self.act = ACT2FN[config.classifier_activation]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


# Top-level modules of task heads; their weights may legitimately be missing from a checkpoint.
HEAD_MODULES = ("head", "decoder", "classifier")


def say_which_varlen_kernel() -> None:
    """'flash_attention_2' runs flash-attn's varlen kernel, or torch's `varlen_attn` when flash-attn is
    not installed: said once per process, so the substitute never runs unannounced."""
    if flash_attn_varlen_kernel() is not None:
        logger.info_once("attn_implementation='flash_attention_2' runs flash-attn's flash_attn_varlen_func.")
    else:
        logger.warning_once("flash-attn is not installed: attn_implementation='flash_attention_2' runs PyTorch's "
                            "torch.nn.attention.varlen.varlen_attn instead (no attention dropout). "
                            "pip install flash-attn to run flash-attn's kernel.")


class RexBertPreTrainedModel(PreTrainedModel):
    config_class = RexBertConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["RexBertEmbeddings", "RexBertEncoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True

    def _check_and_adjust_attn_implementation(self, attn_implementation, is_init_check=False, **kwargs) -> str:
        # RexBERT brings its own varlen backends (flash-attn or torch's varlen_attn), so it validates
        # the name itself instead of requiring the flash-attn package like transformers does.
        backend = check_attn_implementation(attn_implementation)
        if backend == "flash_attention_2":
            if not torch.cuda.is_available():
                raise ValueError("attn_implementation='flash_attention_2' needs a CUDA GPU; use 'sdpa' here.")
            say_which_varlen_kernel()
        return backend

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As in transformers, but encoder weights missing from the checkpoint (transformers would
        initialise them randomly) or encoder weights the model has no place for are errors that name
        them. Task-head weights may be absent or extra, as when fine-tuning from a masked-LM checkpoint."""
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path", "")
        for problem in ("missing", "unexpected"):
            keys = sorted(k for k in info[f"{problem}_keys"] if k.split(".")[0] not in HEAD_MODULES)
            if keys:
                shown = ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
                verb = "lacks" if problem == "missing" else "has unexpected"
                raise ValueError(
                    f"The checkpoint {source} {verb} encoder weights: {shown}. It does not match this config "
                    "(a different size or architecture?)."
                )
        return (model, info) if wants_info else model

    @classmethod
    def _can_set_attn_implementation(cls) -> bool:
        return True  # switching backends changes no module or weight

    def _initialize_weights(self, module: nn.Module, is_custom_code: bool = False) -> None:
        # transformers skips parameter-less modules of custom code (our MLP, attention and heads set
        # their children's std); `_init_weights` uses `transformers.initialization`, which already
        # leaves loaded weights alone, so the stock path is safe.
        super()._initialize_weights(module, is_custom_code=False)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        config = self.config
        cutoff = config.initializer_cutoff_factor if config.initializer_cutoff_factor is not None else 3.0

        def trunc_normal(linear: nn.Module, std: float) -> None:
            init.trunc_normal_(linear.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)
            if getattr(linear, "bias", None) is not None:
                init.zeros_(linear.bias)

        std_in = config.initializer_range
        std_out = config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers)
        if isinstance(module, RexBertEmbeddings):
            trunc_normal(module.tok_embeddings, std_in)
        elif isinstance(module, (RexBertMLP, RexBertAttention)):
            trunc_normal(module.Wi if isinstance(module, RexBertMLP) else module.Wqkv, std_in)
            trunc_normal(module.Wo, std_out)
        elif isinstance(module, RexBertPredictionHead):
            trunc_normal(module.dense, std_out)
        elif isinstance(module, RexBertForMaskedLM):
            trunc_normal(module.decoder, std_out)
        elif isinstance(module, RexBertClassifierBase):
            trunc_normal(module.classifier, config.hidden_size**-0.5)
        elif isinstance(module, RexBertRotaryEmbedding):
            for layer_type in module.layer_types:
                inv_freq, _ = module.compute_inv_freq(config, layer_type)
                init.copy_(getattr(module, f"{layer_type}_inv_freq"), inv_freq)
                init.copy_(getattr(module, f"{layer_type}_original_inv_freq"), inv_freq)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """As in transformers, plus an `auto_map` for every head (a masked-LM folder also loads with `AutoModel`,
        as sentence-transformers does), a sentence-transformers config (mean pooling), and the bundled tokenizer
        when the folder has none and the vocabulary is RexBERT's."""
        code_module = type(self).__module__.split(".")[-1]
        config_module = type(self.config).__module__.split(".")[-1]
        self.config.auto_map = {
            "AutoConfig": f"{config_module}.{type(self.config).__name__}",
            **{auto: f"{code_module}.{name}" for auto, name in AUTO_MAP.items()},
        }
        super().save_pretrained(save_directory, *args, **kwargs)
        folder = Path(save_directory)
        if not kwargs.get("is_main_process", True):
            return
        try:  # imported by name so that the remote-code copy of this file does not depend on them
            tokenization = importlib.import_module(f"{__package__}.tokenization_rexbert")
            importlib.import_module(f"{__package__}.sentence_transformers_config").write_config(folder)
        except ImportError:  # running as remote code: the folder we were loaded from carries the tokenizer
            return
        tokenizer = None if (folder / "tokenizer.json").exists() else tokenization.load_tokenizer()
        if tokenizer is not None and len(tokenizer) <= self.config.vocab_size:  # a custom vocabulary brings its own
            tokenization.save_tokenizer(tokenizer, folder)


@dataclass
class EncoderState:
    """Encoder output on the unpadded stream, for heads that pool or predict before padding back."""

    last_hidden_state: torch.Tensor  # (num_tokens, hidden)
    batch: UnpaddedBatch
    hidden_states: tuple[torch.Tensor, ...] | None  # each (num_tokens, hidden)

    def padded_hidden_states(self) -> tuple[torch.Tensor, ...] | None:
        if self.hidden_states is None:
            return None
        return tuple(self.batch.pad(h) for h in self.hidden_states)


class RexBertModel(RexBertPreTrainedModel):
    # Loading the encoder alone from a task checkpoint (as sentence-transformers does) drops its head.
    _keys_to_ignore_on_load_unexpected = [rf"^{name}\." for name in HEAD_MODULES]

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.embeddings = RexBertEmbeddings(config)
        self.layers = nn.ModuleList(RexBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.rotary_emb = RexBertRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tok_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.tok_embeddings = value

    def encode(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> EncoderState:
        """Runs the encoder on the real tokens only and returns the unpadded stream."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if output_attentions:
            raise ValueError(
                "RexBERT does not return attention maps: attention runs per document on unpadded tokens. "
                "Use transformers' ModernBertModel (after `rexbert convert --to modernbert`) to inspect them."
            )
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference.dim() == 1 or (inputs_embeds is not None and inputs_embeds.dim() == 2):
            reference = reference.unsqueeze(0)  # one already-unpadded stream, e.g. with cu_seqlens
            input_ids = input_ids.unsqueeze(0) if input_ids is not None else None
            inputs_embeds = inputs_embeds.unsqueeze(0) if inputs_embeds is not None else None
        batch_size, seq_len = reference.shape[:2]
        batch = unpad_inputs(attention_mask, batch_size, seq_len, reference.device, position_ids, cu_seqlens)

        if input_ids is not None:
            hidden = self.embeddings(input_ids=batch.unpad(input_ids))
        else:
            hidden = self.embeddings(inputs_embeds=batch.unpad(inputs_embeds))
        rotary = {t: self.rotary_emb(hidden, batch.position_ids, t) for t in self.rotary_emb.layer_types}

        all_hidden = [hidden] if output_hidden_states else None
        for layer in self.layers:
            hidden = layer(hidden, batch=batch, rotary=rotary[layer.attention_type])
            if all_hidden is not None:
                all_hidden.append(hidden)
        hidden = self.final_norm(hidden)
        if all_hidden is not None:
            all_hidden[-1] = hidden  # as in transformers' ModernBERT: the last entry is the normed output
        return EncoderState(hidden, batch, tuple(all_hidden) if all_hidden is not None else None)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        r"""
        Args:
            input_ids: `(batch, seq)` token ids, or `(num_tokens,)` for one unpadded stream.
            attention_mask: `(batch, seq)`, 1 at real tokens; padding is removed before the embeddings.
            position_ids: RoPE positions; a restart at 0 inside a row starts a new document (packing).
            cu_seqlens: document offsets into the stream of real tokens (packing, as in flash-attn).

        Returns `last_hidden_state` (and `hidden_states`) padded back to `(batch, seq, hidden)`,
        zeros at padding.
        """
        state = self.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                            output_hidden_states, output_attentions)
        return BaseModelOutput(
            last_hidden_state=state.batch.pad(state.last_hidden_state),
            hidden_states=state.padded_hidden_states(),
        )


class RexBertForMaskedLM(RexBertPreTrainedModel):
    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        r"""
        With `labels` (`-100`, or `config.sparse_pred_ignore_index`, where no prediction is wanted),
        `logits` are `(num_masked, vocab)` for the labelled positions only, in row-major order, and
        `loss` is their mean cross-entropy. Without labels, `logits` are `(batch, seq, vocab)`.
        """
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        hidden = state.last_hidden_state
        loss = None
        if labels is not None:
            labels = state.batch.unpad(labels)
            predicted = labels != self.config.sparse_pred_ignore_index
            labels = labels[predicted]
            logits = self.decoder(self.head(hidden[predicted]))
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size,
                                      ignore_index=self.config.sparse_pred_ignore_index, **kwargs)
        else:
            logits = state.batch.pad(self.decoder(self.head(hidden)))
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=state.padded_hidden_states())


def _pool(state: EncoderState, pooling: str) -> torch.Tensor:
    """One vector per input row: its first real token ([CLS]) or the mean of its real tokens."""
    batch, hidden = state.batch, state.last_hidden_state
    if pooling == "cls":
        return hidden.index_select(0, batch.row_starts.clamp(max=batch.num_tokens - 1))
    sums = hidden.new_zeros(batch.batch_size, hidden.shape[-1]).index_add_(0, batch.row_of_token, hidden)
    return sums / batch.row_lengths.clamp(min=1).unsqueeze(-1).to(hidden.dtype)


class RexBertClassifierBase(RexBertPreTrainedModel):
    """The modules both classification heads share (names as in ModernBERT, so weights line up): the
    encoder, the prediction head, dropout and a linear classifier over `num_labels`."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()


class RexBertForSequenceClassification(RexBertClassifierBase):
    """Classification, multi-label classification or regression (`num_labels=1`) over a pooled row
    (`config.classifier_pooling`: `"cls"` or `"mean"`)."""

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """`logits` are `(batch, num_labels)`, one per input row. Documents (`cu_seqlens`, or restarts of
        `position_ids`) keep attention apart, as in the other heads; pooling is over the whole row."""
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        logits = self.classifier(self.drop(self.head(_pool(state, self.config.classifier_pooling))))
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=state.padded_hidden_states())


class RexBertForTokenClassification(RexBertClassifierBase):
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        """`logits` are `(batch, seq, num_labels)`; the loss covers real tokens whose label is not -100."""
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        logits = self.classifier(self.drop(self.head(state.last_hidden_state)))
        loss = self.loss_function(logits, state.batch.unpad(labels), self.config) if labels is not None else None
        return TokenClassifierOutput(loss=loss, logits=state.batch.pad(logits), hidden_states=state.padded_hidden_states())


# transformers Auto class -> RexBERT class, for registration and for the `auto_map` of saved folders.
AUTO_MAP = {
    "AutoModel": RexBertModel.__name__,
    "AutoModelForMaskedLM": RexBertForMaskedLM.__name__,
    "AutoModelForSequenceClassification": RexBertForSequenceClassification.__name__,
    "AutoModelForTokenClassification": RexBertForTokenClassification.__name__,
}

__all__ = [
    "AUTO_MAP",
    "RexBertPreTrainedModel",
    "RexBertModel",
    "RexBertForMaskedLM",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
]
