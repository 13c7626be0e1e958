"""Attention over an unpadded token stream, one function per backend.

Every backend takes the fused, already rotated `qkv` of shape `(num_tokens, 3, heads, head_dim)`
and returns `(num_tokens, heads * head_dim)`; none of them attends across documents.

- `flash_attention_2`: varlen kernels on the stream itself: the `flash-attn` package when
  installed, else PyTorch's `torch.nn.attention.varlen.varlen_attn` (CUDA only).
- `sdpa` / `eager`: documents of similar length are gathered into rectangles (see
  `unpadding.AttentionBucket`) and attended with `scaled_dot_product_attention` or explicit
  matmul-softmax; exact, and the fast path on CPU.

This file travels to the Hub as remote code: it may import only torch (flash-attn optionally).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .unpadding import AttentionBucket, UnpaddedBatch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_to_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates queries and keys of `(T, 3, heads, head_dim)` by per-token `cos`/`sin` of `(T, head_dim)`
    (GPT-NeoX rotate-half style over the full head dim, computed in fp32 like ModernBERT)."""
    qk = qkv[:, :2].float()
    cos, sin = cos[:, None, None, :], sin[:, None, None, :]
    qk = qk * cos + rotate_half(qk) * sin
    return torch.cat((qk.to(qkv.dtype), qkv[:, 2:]), dim=1)


def _bucketed(attend: Callable[..., torch.Tensor]):
    """Runs `attend(q, k, v, mask, dropout, scale)` on each length bucket and restores stream order."""

    def run(qkv: torch.Tensor, batch: UnpaddedBatch, half_window: int | None, dropout: float, scale: float,
            **_: object) -> torch.Tensor:
        buckets, restore = batch.buckets
        outputs = [_attend_bucket(attend, qkv, bucket, half_window, dropout, scale) for bucket in buckets]
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        return out if restore is None else out.index_select(0, restore)

    return run


def _attend_bucket(attend, qkv, bucket: AttentionBucket, half_window, dropout, scale) -> torch.Tensor:
    heads, head_dim = qkv.shape[2], qkv.shape[3]
    rect = qkv if bucket.gather is None else qkv.index_select(0, bucket.gather)
    q, k, v = rect.view(bucket.n_docs, bucket.length, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    out = attend(q, k, v, bucket.mask(half_window), dropout, scale)  # (n_docs, heads, length, head_dim)
    out = out.transpose(1, 2).reshape(bucket.n_docs * bucket.length, heads * head_dim)
    return out if bucket.keep is None else out.index_select(0, bucket.keep)


def _sdpa(q, k, v, mask, dropout, scale):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)


def _eager(q, k, v, mask, dropout, scale):
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    probs = F.dropout(probs, p=dropout, training=dropout > 0)
    return torch.matmul(probs, v)


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def _flash_varlen(qkv: torch.Tensor, batch: UnpaddedBatch, half_window: int | None, dropout: float, scale: float,
                  deterministic: bool = False) -> torch.Tensor:
    if qkv.device.type != "cuda":
        raise RuntimeError("attn_implementation='flash_attention_2' runs on CUDA only; use 'sdpa' on this device.")
    orig_dtype = qkv.dtype
    if orig_dtype not in (torch.float16, torch.bfloat16):
        qkv = qkv.to(torch.bfloat16)  # the varlen kernels take half precision only
    window = (half_window, half_window) if half_window is not None else (-1, -1)
    if flash_attn_installed():
        from flash_attn import flash_attn_varlen_qkvpacked_func

        out = flash_attn_varlen_qkvpacked_func(
            qkv, batch.cu_seqlens, batch.max_seqlen, dropout_p=dropout, softmax_scale=scale,
            causal=False, window_size=window, deterministic=deterministic,
        )
    else:
        from torch.nn.attention.varlen import varlen_attn

        if dropout > 0:
            raise ValueError("torch's varlen_attn has no attention dropout; install flash-attn or set attention_dropout=0.")
        q, k, v = qkv.unbind(1)
        out = varlen_attn(q, k, v, batch.cu_seqlens, batch.cu_seqlens, batch.max_seqlen, batch.max_seqlen,
                          scale=scale, window_size=window)
    return out.reshape(qkv.shape[0], -1).to(orig_dtype)


ATTENTION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": _bucketed(_sdpa),
    "eager": _bucketed(_eager),
    "flash_attention_2": _flash_varlen,
}
