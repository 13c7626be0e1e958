"""RexBERT: a ModernBERT-architecture encoder that removes padding once and keeps it out.

State-dict keys equal transformers' `ModernBert*` classes, so ModernBERT, Ettin and released RexBERT
weights load unchanged, and outputs follow stock ModernBERT's (shapes, `output_hidden_states` /
`output_attentions` via argument or config, `return_dict=False`). Inputs are unpadded before the
embedding lookup (labels too), every layer runs on the real tokens only, and outputs are padded back
to `(batch, seq, ...)` at the very end. Where stock and RexBERT differ on purpose, README.md says why.

This file travels to the Hub as remote code: it may import only torch and transformers.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch
from torch import nn

# isort: off
# The config module first: on transformers 4.x its import stops with a message naming the version needed.
from .configuration_rexbert import RexBertConfig, check_attn_implementation
# isort: on
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple

from .attention_rexbert import attention_backend, varlen_kernel
from .layers_rexbert import (
    RexBertAttention,
    RexBertEmbeddings,
    RexBertEncoderLayer,
    RexBertMLP,
    RexBertPredictionHead,
    RexBertRotaryEmbedding,
)
from .outputs_rexbert import EncoderState, exporting, hidden_state_selection
from .unpadding import static_batch, unpad_inputs

logger = logging.get_logger(__name__)


# Top-level modules of task heads; their weights may legitimately be missing from a checkpoint.
HEAD_MODULES = ("head", "decoder", "classifier")


def say_which_attention_runs(implementation: str, output_attentions: bool) -> None:
    """Logs once per process and backend which attention a forward call runs; a substitute for what was
    asked for (the kernels build of flash-attn, torch's varlen_attn) is a warning, so it never runs unannounced."""
    description, substitute = attention_backend(implementation, output_attentions)
    (logger.warning_once if substitute else logger.info_once)(f"RexBERT attention backend: {description}.")


class RexBertPreTrainedModel(PreTrainedModel):
    config_class = RexBertConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["RexBertEmbeddings", "RexBertEncoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True

    def _check_and_adjust_attn_implementation(self, attn_implementation, is_init_check=False, **kwargs) -> str:
        # RexBERT validates the name itself: 'flash_attention_2' also runs without the flash-attn package
        # (transformers' kernels fallback, else torch's varlen_attn; see attention_rexbert.varlen_kernel).
        backend = check_attn_implementation(attn_implementation)
        if backend == "flash_attention_2":
            if not torch.cuda.is_available():
                raise ValueError("attn_implementation='flash_attention_2' needs a CUDA GPU; use 'sdpa' here.")
            varlen_kernel()  # loads the kernel now (as transformers preloads), so a missing one fails here
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
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
    ) -> EncoderState:
        """Runs the encoder on the real tokens only (on the padded batch while exporting) and returns the
        stream, with the hidden states and attention maps asked for (here or in the config)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference.dim() == 1 or (inputs_embeds is not None and inputs_embeds.dim() == 2):
            reference = reference.unsqueeze(0)  # one already-unpadded stream, e.g. with cu_seqlens
            input_ids = input_ids.unsqueeze(0) if input_ids is not None else None
            inputs_embeds = inputs_embeds.unsqueeze(0) if inputs_embeds is not None else None
        batch_size, seq_len = reference.shape[:2]
        if exporting():
            if cu_seqlens is not None:
                raise ValueError("cu_seqlens cannot be exported or traced (its documents set the shapes); "
                                 "mark documents with position_ids restarting at 0 instead.")
            batch = static_batch(attention_mask, batch_size, seq_len, reference.device, position_ids)
        else:
            batch = unpad_inputs(attention_mask, batch_size, seq_len, reference.device, position_ids, cu_seqlens)
            say_which_attention_runs(self.config._attn_implementation, bool(output_attentions))

        if input_ids is not None:
            hidden = self.embeddings(input_ids=batch.unpad(input_ids))
        else:
            hidden = self.embeddings(inputs_embeds=batch.unpad(inputs_embeds))
        rotary = {t: self.rotary_emb(hidden, batch.position_ids, t) for t in self.rotary_emb.layer_types}

        output_attentions = bool(output_attentions)
        selected = hidden_state_selection(output_hidden_states, len(self.layers) + 1)
        state = EncoderState(batch, selected, output_attentions)
        collects = state.collects  # False on the default path: no per-layer bookkeeping at all
        hidden = state.record(hidden) if collects else hidden
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            hidden, probs = layer(hidden, batch, rotary[layer.attention_type], output_attentions)
            if collects:
                state.add_attention(probs)
                if index < last:  # as in stock: the last entry is the final-normed output
                    hidden = state.record(hidden)
        return state.finish(self.final_norm(hidden))

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        r"""
        Args:
            input_ids: `(batch, seq)` token ids, or `(num_tokens,)` for one unpadded stream.
            attention_mask: `(batch, seq)`, 1 at real tokens; padding is removed before the embeddings.
            position_ids: RoPE positions; a restart at 0 inside a row starts a new document (packing).
            cu_seqlens: document offsets into the stream of real tokens (packing, as in flash-attn).
            output_hidden_states: `True`, or the indices of the hidden states to return (as transformers 5).
            output_attentions: return `(batch, heads, seq, seq)` attention maps (computed eagerly for the call).

        Returns `last_hidden_state` (and `hidden_states`) padded back to `(batch, seq, hidden)`,
        zeros at padding.
        """
        state = self.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                            output_hidden_states, output_attentions)
        return BaseModelOutput(last_hidden_state=state.padded_last_hidden_state(), **state.outputs())


class RexBertForMaskedLM(RexBertPreTrainedModel):
    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        # Attributes as in stock ModernBERT (read from the config once; code that sets them keeps working).
        self.sparse_prediction = config.sparse_prediction
        self.sparse_pred_ignore_index = config.sparse_pred_ignore_index
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
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        sparse_prediction: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        r"""
        `logits` are `(batch, seq, vocab)` (zeros at padding) and, with `labels` (`-100` where no prediction
        is wanted), `loss` is the mean cross-entropy over the labelled real tokens, as in stock ModernBERT.

        `sparse_prediction` (default: `self.sparse_prediction`, from the config, False as in ModernBERT): with
        `labels`, run the head on the positions whose label is not `sparse_pred_ignore_index` only and return
        their `logits`, `(num_predicted, vocab)` in row-major order: the same loss for much less work
        (the training loop asks for it).
        """
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        hidden = state.last_hidden_state
        sparse = self.sparse_prediction if sparse_prediction is None else sparse_prediction
        loss = None
        if labels is not None:
            labels = state.batch.unpad_labels(labels)
        if labels is not None and sparse:
            predicted = labels != self.sparse_pred_ignore_index
            labels = labels[predicted]
            logits = self.decoder(self.head(hidden[predicted]))
        else:
            logits = self.decoder(self.head(hidden))
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)
        if labels is None or not sparse:
            logits = state.batch.pad(logits)
        return MaskedLMOutput(loss=loss, logits=logits, **state.outputs())


def _pool(state: EncoderState, pooling: str) -> torch.Tensor:
    """One vector per input row: its first real token ([CLS]) or the mean of its real tokens."""
    return state.batch.first_token(state.last_hidden_state) if pooling == "cls" else state.batch.mean(
        state.last_hidden_state)


class RexBertClassifierBase(RexBertPreTrainedModel):
    """The modules every classification head shares (names as in ModernBERT, so weights line up): the
    encoder, the prediction head, dropout and a linear classifier over `num_outputs` (`num_labels`)."""

    num_outputs: int | None = None  # None: config.num_labels

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, self.num_outputs or config.num_labels)
        self.post_init()

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.head(hidden)))


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
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """`logits` are `(batch, num_labels)`, one per input row. Documents (`cu_seqlens`, or restarts of
        `position_ids`) keep attention apart, as in the other heads; pooling is over the whole row."""
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        logits = self.classify(_pool(state, self.config.classifier_pooling))
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, **state.outputs())


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
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        """`logits` are `(batch, seq, num_labels)`; the loss covers real tokens whose label is not -100."""
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        logits = self.classify(state.last_hidden_state)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, state.batch.unpad_labels(labels), self.config)
        return TokenClassifierOutput(loss=loss, logits=state.batch.pad(logits), **state.outputs())


class RexBertForQuestionAnswering(RexBertClassifierBase):
    """Extractive QA (e.g. "What is the screen size?" over a product description): a start and an end
    logit per token, as transformers' `ModernBertForQuestionAnswering`."""

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> QuestionAnsweringModelOutput:
        """`start_logits`/`end_logits` are `(batch, seq)`; padding gets the dtype's lowest value, so it is never
        an answer and adds nothing to the loss (the mean of the start and end cross-entropies)."""
        state = self.model.encode(input_ids, attention_mask, position_ids, inputs_embeds, cu_seqlens,
                                  output_hidden_states, output_attentions)
        logits = self.classify(state.last_hidden_state)
        logits = state.batch.pad(logits, value=torch.finfo(logits.dtype).min)
        start_logits, end_logits = (x.squeeze(-1).contiguous() for x in logits.split(1, dim=-1))
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.loss_function(start_logits, end_logits, start_positions, end_positions, **kwargs)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            **state.outputs())


class RexBertForMultipleChoice(RexBertClassifierBase):
    """One score per choice: inputs are `(batch, num_choices, seq)`, each choice is pooled as in sequence
    classification, `logits` are `(batch, num_choices)`."""

    num_outputs = 1

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | int | list[int] | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MultipleChoiceModelOutput:
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None or reference.dim() != (3 if input_ids is not None else 4):
            raise ValueError("RexBertForMultipleChoice takes input_ids (batch, num_choices, seq) or inputs_embeds "
                             "(batch, num_choices, seq, hidden).")
        num_choices = reference.shape[1]

        def flat(x: torch.Tensor | None, trailing: int = 1) -> torch.Tensor | None:
            return None if x is None else x.reshape(-1, *x.shape[x.dim() - trailing:])

        state = self.model.encode(flat(input_ids), flat(attention_mask), flat(position_ids), flat(inputs_embeds, 2),
                                  None, output_hidden_states, output_attentions)
        logits = self.classify(_pool(state, self.config.classifier_pooling)).view(-1, num_choices)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceModelOutput(loss=loss, logits=logits, **state.outputs())


# transformers Auto class -> RexBERT class, for registration and for the `auto_map` of saved folders.
AUTO_MAP = {
    "AutoModel": RexBertModel.__name__,
    "AutoModelForMaskedLM": RexBertForMaskedLM.__name__,
    "AutoModelForSequenceClassification": RexBertForSequenceClassification.__name__,
    "AutoModelForTokenClassification": RexBertForTokenClassification.__name__,
    "AutoModelForQuestionAnswering": RexBertForQuestionAnswering.__name__,
    "AutoModelForMultipleChoice": RexBertForMultipleChoice.__name__,
}

__all__ = [
    "AUTO_MAP",
    "RexBertPreTrainedModel",
    "RexBertModel",
    "RexBertForMaskedLM",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
    "RexBertForQuestionAnswering",
    "RexBertForMultipleChoice",
]
