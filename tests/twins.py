"""Small RexBERT configs and their stock transformers ModernBERT twins on the same weights, for the
conformance tests: a 512-token vocabulary and a local window of 8 (+-4), so that short padded
documents already span several windows."""

from __future__ import annotations

import torch
import transformers

import modeling_rexbert
from conftest import padded_batch
from modeling_rexbert.convert import to_modernbert_config

PAD, CLS, SEP = 0, 1, 2
# Longer than the local window, shorter, a single token; padded to the longest.
LENGTHS = [29, 6, 17, 1]


def small_config(**overrides) -> modeling_rexbert.RexBertConfig:
    settings = dict(vocab_size=512, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                    local_attention=8, max_position_embeddings=128, pad_token_id=PAD, bos_token_id=CLS,
                    cls_token_id=CLS, eos_token_id=SEP, sep_token_id=SEP)
    return modeling_rexbert.RexBertConfig(**{**settings, **overrides})


def twins(head: str = "ForMaskedLM", stock_attention: str = "sdpa", seed: int = 0, **overrides):
    """(RexBERT model, stock ModernBERT model) with one config and the same weights, in eval mode."""
    torch.manual_seed(seed)
    ours = getattr(modeling_rexbert, f"RexBert{head}")(small_config(**overrides)).eval()
    config = to_modernbert_config(ours.config)
    config._attn_implementation = stock_attention
    stock = getattr(transformers, f"ModernBert{head}")(config).eval()
    stock.load_state_dict(ours.state_dict())
    return ours, stock


def batch(lengths=LENGTHS, seed: int = 0, left: bool = False):
    """Random `[CLS] ... [SEP]` rows of the given lengths in the tiny vocabulary, padded right (or left) with PAD."""
    return padded_batch(lengths, seed, left, id_range=(3, 512), specials=(PAD, CLS, SEP))


def mlm_labels(ids: torch.Tensor, mask: torch.Tensor, every: int = 3) -> torch.Tensor:
    """Labels on every `every`-th real token, -100 elsewhere (padding included)."""
    return torch.where(mask.bool() & (torch.arange(ids.shape[1]) % every == 1), ids, -100)


def real(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The entries of a `(batch, seq, ...)` tensor at real tokens."""
    return tensor[mask.bool()]
