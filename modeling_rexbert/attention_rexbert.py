"""Attention over an unpadded token stream, one function per backend.

Every backend takes rotated queries, keys and values of shape `(num_tokens, heads, head_dim)` and
returns `(num_tokens, heads * head_dim)`; none of them attends across documents.

- `flash_attention_2`: varlen kernels on the stream itself (CUDA only), chosen as transformers
  chooses for stock models: the `flash-attn` package when installed, else its prebuilt build through
  transformers' `kernels` fallback, else PyTorch's `torch.nn.attention.varlen.varlen_attn`
  (see `varlen_kernel`; the model logs once which backend ran).
- `sdpa` / `eager`: documents of similar length are gathered into rectangles (see
  `unpadding.AttentionBucket`) and attended with `scaled_dot_product_attention` or explicit
  matmul-softmax; exact, and the fast path on CPU.
- `padded_attention`: the padded batch as one rectangle, for attention maps and for export.

This file travels to the Hub as remote code: it may import only torch and transformers (which loads
flash-attn or a kernel from the Hub when asked for).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from transformers.modeling_flash_attention_utils import FLASH_ATTN_KERNEL_FALLBACK, lazy_import_flash_attention
from transformers.utils import is_flash_attn_2_available, is_kernels_available

from .unpadding import AttentionBucket, UnpaddedBatch


def apply_rotary(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Splits `(T, 3, heads, head_dim)` into `q, k, v` of `(T, heads, head_dim)`, rotating `q` and `k`
    GPT-NeoX style (rotate-half over the full head dim) in fp32, like ModernBERT. `v` stays a view.

    `cos`/`sin` are `(T, head_dim / 2)`: with halves `x1, x2`, the rotation is
    `[x1 cos - x2 sin, x2 cos + x1 sin]`, the same numbers as `x * cos + rotate_half(x) * sin` on
    duplicated tables, in fewer passes over memory; `q` and `k` go through it together (half the
    kernel launches, which dominate on CPU at small hidden sizes). Not fused multiply-adds: those round
    differently from stock ModernBERT, which sharp attention amplifies past 1e-4 (scripts/compat_check.py).
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
    block = bucket.local_block(half_window)
    if block is None:
        out = attend(q, k, v, bucket.mask(half_window), dropout, scale)
    elif bucket.copies_key_windows(block, backward=torch.is_grad_enabled() and q.requires_grad):
        out = _attend_local_blocks(attend, q, k, v, bucket.mask(half_window), block, dropout, scale)
    else:
        out = _attend_local_slices(attend, q, k, v, bucket, half_window, block, dropout, scale)
    out = out.transpose(1, 2).reshape(bucket.n_docs * bucket.length, heads * head_dim)
    return out if bucket.keep is None else out.index_select(0, bucket.keep)


def _attend_local_slices(attend, q, k, v, bucket: AttentionBucket, half_window: int, block: int, dropout,
                         scale) -> torch.Tensor:
    """Local attention on `(n, heads, L, dim)`, one block of queries at a time against the slice of keys
    within `half_window` of it (views: nothing is copied but the outputs)."""
    length = q.shape[2]
    outputs = []
    for start in range(0, length, block):
        queries = slice(start, min(length, start + block))
        keys = slice(max(0, start - half_window), min(length, queries.stop + half_window))
        mask = bucket.slice_mask(half_window, queries, keys)
        outputs.append(attend(q[:, :, queries], k[:, :, keys], v[:, :, keys], mask, dropout, scale))
    return torch.cat(outputs, dim=2)


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


# The torch release whose `varlen_attn` takes the keywords `_flash_varlen` passes (2.10 had neither).
VARLEN_ATTN_TORCH = "2.11"
VARLEN_ATTN_KEYWORDS = ("scale", "window_size")


class VarlenKernel(NamedTuple):
    """The varlen kernel `flash_attention_2` runs: `name` for the log line, and how to call it."""

    name: str
    function: Callable[..., torch.Tensor]
    # transformers' keyword builder for flash-attn-style kernels (None: torch's varlen_attn)
    flash_kwargs: Callable[..., dict] | None
    substitute: bool  # True when it is not the flash-attn package the user asked for


@functools.cache
def varlen_kernel() -> VarlenKernel:
    """Chooses the kernel as transformers does for stock models asking for `flash_attention_2`: the
    flash-attn package when installed, else its prebuilt build from the Hub through transformers' `kernels`
    fallback (`kernels-community/flash-attn2`), else PyTorch's `varlen_attn` (RexBERT's own last resort).
    Loaded once; raises a clear error when none is usable."""
    kernels_problem = "the kernels package is not installed (pip install kernels)"
    if is_flash_attn_2_available() or is_kernels_available():
        implementation = ("flash_attention_2" if is_flash_attn_2_available()
                          else FLASH_ATTN_KERNEL_FALLBACK["flash_attention_2"])
        try:
            (_, varlen, *_), (flash_kwargs, _) = lazy_import_flash_attention(implementation)
        except Exception as error:  # e.g. offline, the kernel not in the Hub cache
            if implementation == "flash_attention_2":
                raise
            kernels_problem = f"loading {implementation} through kernels failed ({error})"
        else:
            if implementation == "flash_attention_2":
                return VarlenKernel("flash-attn's flash_attn_varlen_func", varlen, flash_kwargs, False)
            return VarlenKernel(f"flash_attn_varlen_func of {implementation} (kernels package; flash-attn is "
                                "not installed)", varlen, flash_kwargs, True)
    return VarlenKernel(f"PyTorch's varlen_attn (flash-attn is not installed and {kernels_problem}; no "
                        "attention dropout)", torch_varlen_attn(), None, True)


def torch_varlen_attn() -> Callable[..., torch.Tensor]:
    """`torch.nn.attention.varlen.varlen_attn`, or an error naming the torch release it needs."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        varlen_attn = None
    parameters = inspect.signature(varlen_attn).parameters if varlen_attn is not None else {}
    missing = [name for name in VARLEN_ATTN_KEYWORDS if name not in parameters]
    if missing:
        raise ImportError(
            f"attn_implementation='flash_attention_2' without flash-attn or the kernels package runs "
            f"torch.nn.attention.varlen.varlen_attn with {', '.join(VARLEN_ATTN_KEYWORDS)}, which needs "
            f"torch>={VARLEN_ATTN_TORCH}; torch {torch.__version__} has "
            f"{'no varlen_attn' if varlen_attn is None else 'no ' + ', '.join(missing)}. Upgrade torch, "
            "`pip install kernels` or `pip install flash-attn --no-build-isolation`, or use attn_implementation='sdpa'."
        )
    return varlen_attn


def flash_varlen_kwargs(flash_kwargs: Callable[..., dict], longest: int, half_window: int | None, dropout: float,
                        scale: float, deterministic: bool) -> dict:
    """Keywords for a flash-attn-style `flash_attn_varlen_func`, built by transformers' helper (it keeps those
    the loaded kernel accepts). Its window is `sliding_window - 1` to each side; ours is `half_window`."""
    return flash_kwargs(longest, longest, False, dropout=dropout, softmax_scale=scale,
                        sliding_window=half_window + 1 if half_window is not None else None,
                        deterministic=deterministic, max_seqlen_q=longest, max_seqlen_k=longest)


def _flash_varlen(q, k, v, batch: UnpaddedBatch, half_window: int | None, dropout: float, scale: float,
                  deterministic: bool = False) -> torch.Tensor:
    if q.device.type != "cuda":
        raise RuntimeError("attn_implementation='flash_attention_2' runs on CUDA only; use 'sdpa' on this device.")
    orig_dtype = q.dtype
    if orig_dtype not in (torch.float16, torch.bfloat16):  # the varlen kernels take half precision only
        q, k, v = (x.to(torch.bfloat16) for x in (q, k, v))
    cu, longest = batch.cu_seqlens, batch.max_seqlen
    kernel = varlen_kernel()
    if kernel.flash_kwargs is not None:
        kwargs = flash_varlen_kwargs(kernel.flash_kwargs, longest, half_window, dropout, scale, deterministic)
        out = kernel.function(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, **kwargs)
    else:
        if dropout > 0:
            raise ValueError("torch's varlen_attn has no attention dropout; install flash-attn or kernels, "
                             "or set attention_dropout=0.")
        window = (half_window, half_window) if half_window is not None else (-1, -1)
        out = kernel.function(q, k, v, cu, cu, longest, longest, scale=scale, window_size=window)
    return out.reshape(q.shape[0], -1).to(orig_dtype)


def attention_backend(implementation: str, output_attentions: bool = False) -> tuple[str, bool]:
    """What runs for a forward call, for the log line: `(description, substitute)`."""
    if output_attentions:
        return "eager on the padded batch (this call returns attention maps)", False
    if implementation == "flash_attention_2":
        kernel = varlen_kernel()
        return f"flash_attention_2: {kernel.name}", kernel.substitute
    return f"{implementation} on per-document rectangles of the unpadded stream (exact)", False


ATTENTION_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "sdpa": _bucketed(_sdpa),
    "eager": _bucketed(_eager),
    "flash_attention_2": _flash_varlen,
}
