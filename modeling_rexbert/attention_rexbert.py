"""Attention over an unpadded token stream, one function per backend.

Every backend takes rotated queries, keys and values of shape `(num_tokens, heads, head_dim)` and
returns `(num_tokens, heads * head_dim)`; none of them attends across documents.

- `flash_attention_2`: varlen kernels on the stream itself: the `flash-attn` package when
  installed, else PyTorch's `torch.nn.attention.varlen.varlen_attn` (CUDA only; the model says
  which when it is loaded, see `modeling_rexbert.say_which_varlen_kernel`).
- `sdpa` / `eager`: documents of similar length are gathered into rectangles (see
  `unpadding.AttentionBucket`) and attended with `scaled_dot_product_attention` or explicit
  matmul-softmax; exact, and the fast path on CPU.
- `padded_attention`: the padded batch as one rectangle, for attention maps and for export.

This file travels to the Hub as remote code: it may import only torch (flash-attn optionally).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .unpadding import AttentionBucket, UnpaddedBatch


def apply_rotary(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Splits `(T, 3, heads, head_dim)` into `q, k, v` of `(T, heads, head_dim)`, rotating `q` and `k`
    GPT-NeoX style (rotate-half over the full head dim) in fp32, like ModernBERT. `v` stays a view.

    `cos`/`sin` are `(T, head_dim / 2)`: with halves `x1, x2`, the rotation is
    `[x1 cos - x2 sin, x2 cos + x1 sin]`, the same numbers as `x * cos + rotate_half(x) * sin` on
    duplicated tables, in fewer passes over memory; `q` and `k` go through it together (half the
    kernel launches, which dominate on CPU at small hidden sizes).
    """
    cos, sin = cos[:, None, None, :], sin[:, None, None, :]
    x1, x2 = qkv[:, :2].float().chunk(2, dim=-1)
    qk = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(qkv.dtype)
    return qk[:, 0], qk[:, 1], qkv[:, 2]


def _bucketed(attend: Callable[..., torch.Tensor]):
    """Runs `attend(q, k, v, mask, dropout, scale)` on each length bucket and restores stream order."""

    def run(q, k, v, batch: UnpaddedBatch, half_window: int | None, dropout: float, scale: float,
            **_: object) -> torch.Tensor:
        buckets, restore = batch.buckets
        outputs = [_attend_bucket(attend, q, k, v, bucket, half_window, dropout, scale) for bucket in buckets]
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        return out if restore is None else out.index_select(0, restore)

    return run


def _attend_bucket(attend, q, k, v, bucket: AttentionBucket, half_window, dropout, scale) -> torch.Tensor:
    heads, head_dim = q.shape[1], q.shape[2]

    def rectangle(x: torch.Tensor) -> torch.Tensor:  # (T, heads, dim) -> (n_docs, heads, length, dim)
        x = x if bucket.gather is None else x.index_select(0, bucket.gather)
        return x.view(bucket.n_docs, bucket.length, heads, head_dim).transpose(1, 2)

    q, k, v = rectangle(q), rectangle(k), rectangle(v)
    mask = bucket.mask(half_window)
    block = bucket.local_block(half_window)
    if block is None:
        out = attend(q, k, v, mask, dropout, scale)
    else:
        out = _attend_local_blocks(attend, q, k, v, mask, block, dropout, scale)
    out = out.transpose(1, 2).reshape(bucket.n_docs * bucket.length, heads * head_dim)
    return out if bucket.keep is None else out.index_select(0, bucket.keep)


def _attend_local_blocks(attend, q, k, v, mask, block: int, dropout, scale) -> torch.Tensor:
    """Local attention on `(n, heads, L, dim)`: each block of queries against its own and the two
    neighbouring blocks of keys (which hold its whole band); `mask` is `AttentionBucket.mask`'s."""
    n, heads, length, dim = q.shape
    n_blocks = -(-length // block)
    tail = n_blocks * block - length

    def blocks_first(x: torch.Tensor, size: int) -> torch.Tensor:  # (n, heads, nb, size, dim) -> (n*nb, heads, size, dim)
        return x.permute(0, 2, 1, 3, 4).reshape(n * n_blocks, heads, size, dim)

    def key_windows(x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (0, 0, block, tail + block))
        return blocks_first(padded.unfold(2, 3 * block, block).transpose(-1, -2), 3 * block)

    queries = blocks_first(F.pad(q, (0, 0, 0, tail)).view(n, heads, n_blocks, block, dim), block)
    out = attend(queries, key_windows(k), key_windows(v), mask, dropout, scale)  # (n*nb, heads, block, dim)
    out = out.view(n, n_blocks, heads, block, dim).permute(0, 2, 1, 3, 4).reshape(n, heads, n_blocks * block, dim)
    return out[:, :, :length]


def _sdpa(q, k, v, mask, dropout, scale):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)


def _eager(q, k, v, mask, dropout, scale):
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    probs = F.dropout(probs, p=dropout, training=dropout > 0)
    return torch.matmul(probs, v)


def padded_attention(q, k, v, batch, half_window: int | None, dropout: float, scale: float,
                     return_probs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention on the padded `(batch, heads, seq, seq)` rectangle, with the mask stock ModernBERT uses
    (keys of the same document, `|i - j| <= half_window` on local layers).

    Used when attention maps are asked for (eager, returning the probabilities, zero on padding
    query rows) and while exporting or tracing (sdpa), where shapes must not depend on the data.
    """
    def rectangle(x: torch.Tensor) -> torch.Tensor:  # (T, heads, dim) -> (batch, heads, seq, dim)
        return batch.pad(x).transpose(1, 2)

    q, k, v = rectangle(q), rectangle(k), rectangle(v)
    mask = batch.padded_attention_mask(half_window)  # (batch, 1, seq, seq)
    probs = None
    if return_probs:
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        probs = F.dropout(probs, p=dropout, training=dropout > 0)
        out = torch.matmul(probs, v)
        probs = probs * batch.padded_real[:, None, :, None].to(probs.dtype)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)
    out = out.transpose(1, 2)  # (batch, seq, heads, dim)
    return batch.unpad(out.reshape(*out.shape[:2], -1)), probs


@functools.cache
def flash_attn_varlen_kernel() -> Callable[..., torch.Tensor] | None:
    """flash-attn's varlen kernel, or None when the package is not installed."""
    try:  # in a try block so that transformers' remote-code import check does not require flash-attn
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def _flash_varlen(q, k, v, batch: UnpaddedBatch, half_window: int | None, dropout: float, scale: float,
                  deterministic: bool = False) -> torch.Tensor:
    if q.device.type != "cuda":
        raise RuntimeError("attn_implementation='flash_attention_2' runs on CUDA only; use 'sdpa' on this device.")
    orig_dtype = q.dtype
    if orig_dtype not in (torch.float16, torch.bfloat16):  # the varlen kernels take half precision only
        q, k, v = (x.to(torch.bfloat16) for x in (q, k, v))
    window = (half_window, half_window) if half_window is not None else (-1, -1)
    cu, longest = batch.cu_seqlens, batch.max_seqlen
    flash_varlen = flash_attn_varlen_kernel()
    if flash_varlen is not None:
        out = flash_varlen(q, k, v, cu, cu, longest, longest, dropout_p=dropout, softmax_scale=scale,
                           causal=False, window_size=window, deterministic=deterministic)
    else:
        from torch.nn.attention.varlen import varlen_attn

        if dropout > 0:
            raise ValueError("torch's varlen_attn has no attention dropout; install flash-attn or set attention_dropout=0.")
        out = varlen_attn(q, k, v, cu, cu, longest, longest, scale=scale, window_size=window)
    return out.reshape(q.shape[0], -1).to(orig_dtype)


ATTENTION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": _bucketed(_sdpa),
    "eager": _bucketed(_eager),
    "flash_attention_2": _flash_varlen,
}
