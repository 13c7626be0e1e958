"""Unpad once: where the real tokens of a padded batch live and how they split into documents.

A padded `(batch, seq)` input becomes one stream of `T` real tokens, cut into documents by
`cu_seqlens` (rows, or several documents per row when rows are packed). Every layer runs on the
stream; outputs are padded back only at the end. Backends that need rectangular batches (sdpa,
eager) gather documents of similar length into buckets, so attention never pays for the padding of
the longest document in the batch and never crosses a document boundary.

This file travels to the Hub as remote code: it may import only torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

# A document joins the current bucket while it is at least this fraction of the bucket's longest
# document; below it, padding it to that length would cost more attention work than a new bucket.
BUCKET_LENGTH_RATIO = 0.6
# Local attention goes block by block (blocks of max(half_window, MIN_LOCAL_BLOCK) queries) once a
# rectangle spans LOCAL_SLICES_FROM blocks: each block of queries against the slice of keys within its
# reach, as views. From LOCAL_BLOCKS_FROM blocks, when a backward pass follows, the key windows are
# copied once instead, so the backward pass stays linear in the length. Measured on CPU for a +-64
# window by benchmarks/bench_local_attention.py: forward, slices beat the masked rectangle 1.6-2.0x at
# 384-512 tokens and 3.5x at 1,024, and copied windows 2x at every length; forward + backward, copied
# windows win from 1,024-2,048 tokens (3x at 2,048).
LOCAL_SLICES_FROM = 5
LOCAL_BLOCKS_FROM = 16
MIN_LOCAL_BLOCK = 32


@dataclass
class AttentionBucket:
    """Documents of similar length gathered into an `(n_docs, length)` rectangle for attention.

    Local layers on long rectangles attend block by block (see `local_block`): each block of
    queries sees only the keys that contain its whole band (a slice of them, or on very long
    rectangles its own and the two neighbouring blocks, copied once), so the work grows with
    `length * 3 * block` instead of `length ** 2`. The result is exact.
    """

    n_docs: int
    length: int
    device: torch.device
    gather: torch.Tensor | None  # (n_docs * length,) rows of the token stream; None: the stream itself
    valid: torch.Tensor | None  # (n_docs, length) True at real tokens; None: no padding
    keep: torch.Tensor | None  # (real tokens,) flat slots holding real tokens; None: all of them
    _masks: dict[object, torch.Tensor | None] = field(default_factory=dict, repr=False)

    def local_block(self, half_window: int | None) -> int | None:
        """Query block length for local attention by blocks, or None to attend over the whole rectangle."""
        if half_window is None:
            return None
        block = max(half_window, MIN_LOCAL_BLOCK)
        return block if self.length >= LOCAL_SLICES_FROM * block else None

    def copies_key_windows(self, block: int, backward: bool = True) -> bool:
        """Whether local attention by blocks copies each block's key window (else: slices of the keys). Only
        where a backward pass follows: each slice's gradient is a full-size tensor, while forward only, slices
        win at every length (`benchmarks/bench_local_attention.py`)."""
        return backward and self.length >= LOCAL_BLOCKS_FROM * block

    def mask(self, half_window: int | None) -> torch.Tensor | None:
        """Boolean attention mask (True = attend), or None when nothing needs masking.

        Keys are limited to real tokens of the document and, for local layers, to
        `|i - j| <= half_window`. Padding queries may attend to anything, so no row is fully masked
        (their outputs are dropped, but a fully masked row would put NaNs into the backward pass).
        Shape `(n_docs, 1, length, length)`, or `(n_docs * n_blocks, 1, block, 3 * block)` when
        local attention copies key windows (`copies_key_windows`).
        """
        if half_window not in self._masks:
            block = self.local_block(half_window)
            if block is not None and self.copies_key_windows(block):
                self._masks[half_window] = self._block_mask(half_window, block)
            else:
                self._masks[half_window] = self._full_mask(half_window)
        return self._masks[half_window]

    def slice_mask(self, half_window: int, queries: slice, keys: slice) -> torch.Tensor:
        """`mask(half_window)[..., queries, keys]` without the whole `length ** 2` mask: `(n_docs or 1, 1,
        len(queries), len(keys))`, kept for the next local layer."""
        key = (half_window, queries.start, queries.stop, keys.start, keys.stop)
        if key not in self._masks:
            query_pos = torch.arange(queries.start, queries.stop, device=self.device)[:, None]
            key_pos = torch.arange(keys.start, keys.stop, device=self.device)[None, :]
            band = ((query_pos - key_pos).abs() <= half_window)[None, None]
            if self.valid is not None:
                band = (band & self.valid[:, None, None, keys]) | ~self.valid[:, None, queries, None]
            self._masks[key] = band
        return self._masks[key]

    def _full_mask(self, half_window: int | None) -> torch.Tensor | None:
        needs_band = half_window is not None and self.length > half_window + 1
        if not needs_band and self.valid is None:
            return None
        if not needs_band:
            return self.valid[:, None, None, :]
        pos = torch.arange(self.length, device=self.device)
        band = ((pos[:, None] - pos[None, :]).abs() <= half_window)[None, None]  # (1, 1, L, L)
        if self.valid is None:
            return band
        return (band & self.valid[:, None, None, :]) | ~self.valid[:, None, :, None]

    def _block_mask(self, half_window: int, block: int) -> torch.Tensor:
        n_blocks = -(-self.length // block)
        padded = n_blocks * block
        # Key slots: one block of padding on each side, so every query block has 3 blocks of keys.
        real_key = torch.zeros(self.n_docs, padded + 2 * block, dtype=torch.bool, device=self.device)
        real_key[:, block:block + self.length] = True if self.valid is None else self.valid
        window_keys = real_key.unfold(1, 3 * block, block)  # (n_docs, n_blocks, 3 * block)
        query = torch.arange(block, device=self.device)[:, None]
        key = torch.arange(3 * block, device=self.device)[None, :]
        band = (query + block - key).abs() <= half_window  # (block, 3 * block), the same for every block
        padding_query = ~real_key[:, block:block + padded].view(self.n_docs, n_blocks, block, 1)
        mask = (window_keys[:, :, None, :] & band) | padding_query
        return mask.reshape(self.n_docs * n_blocks, 1, block, 3 * block)


class UnpaddedBatch:
    """The real tokens of a `(batch_size, seq_len)` input as one stream of `num_tokens` tokens.

    Attributes:
        indices: flat positions (in `batch_size * seq_len`) of the real tokens; None without padding.
        cu_seqlens: `(n_docs + 1,)` int32 document offsets in the stream.
        doc_lengths: document lengths as Python ints (bucketing and `max_seqlen` need them on the host).
        position_ids: `(num_tokens,)` RoPE positions.
        row_lengths: `(batch_size,)` real tokens per input row.
    """

    def __init__(
        self,
        batch_size: int,
        seq_len: int,
        indices: torch.Tensor | None,
        row_lengths: torch.Tensor,
        doc_lengths: list[int],
        position_ids: torch.Tensor,
    ):
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.indices = indices
        self.row_lengths = row_lengths
        self.doc_lengths = doc_lengths
        self.position_ids = position_ids
        self.num_tokens = position_ids.shape[0]
        self.max_seqlen = max(doc_lengths, default=0)
        lengths = torch.tensor([0] + doc_lengths, dtype=torch.int32, device=position_ids.device)
        self.cu_seqlens = lengths.cumsum(0, dtype=torch.int32)
        self._padded_masks: dict[int | None, torch.Tensor] = {}

    is_static = False  # shapes depend on the data (see StaticBatch for the other kind)

    @property
    def device(self) -> torch.device:
        return self.position_ids.device

    def unpad(self, tensor: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, ...)` -> `(num_tokens, ...)`."""
        flat = tensor.reshape(self.batch_size * self.seq_len, *tensor.shape[2:])
        return flat if self.indices is None else flat.index_select(0, self.indices)

    def pad(self, tensor: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """`(num_tokens, ...)` -> `(batch, seq, ...)`, filling padding with `value`."""
        if self.indices is None:
            return tensor.reshape(self.batch_size, self.seq_len, *tensor.shape[1:])
        padded = tensor.new_full((self.batch_size * self.seq_len, *tensor.shape[1:]), value)
        padded = padded.index_copy(0, self.indices, tensor)
        return padded.view(self.batch_size, self.seq_len, *tensor.shape[1:])

    def unpad_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """`(batch, seq)` labels -> the labels of the real tokens (padding never counts in a loss)."""
        return self.unpad(labels)

    @cached_property
    def padded_real(self) -> torch.Tensor:
        """`(batch, seq)` True at real tokens."""
        return self.pad(torch.ones(self.num_tokens, dtype=torch.bool, device=self.device), False)

    def padded_attention_mask(self, half_window: int | None) -> torch.Tensor:
        """`(batch, 1, seq, seq)` the keys each query of the padded batch may see (see `document_band_mask`)."""
        if half_window not in self._padded_masks:
            docs = torch.arange(1, len(self.doc_lengths) + 1, device=self.device)
            lengths = torch.tensor(self.doc_lengths, device=self.device)
            self._padded_masks[half_window] = document_band_mask(self.pad(docs.repeat_interleave(lengths)), half_window)
        return self._padded_masks[half_window]

    def first_token(self, hidden: torch.Tensor) -> torch.Tensor:
        """`(batch, hidden)`: each row's first real token ([CLS], also under left padding)."""
        return hidden.index_select(0, self.row_starts.clamp(max=self.num_tokens - 1))

    def mean(self, hidden: torch.Tensor) -> torch.Tensor:
        """`(batch, hidden)`: the mean over each row's real tokens."""
        sums = hidden.new_zeros(self.batch_size, hidden.shape[-1]).index_add_(0, self.row_of_token, hidden)
        return sums / self.row_lengths.clamp(min=1).unsqueeze(-1).to(hidden.dtype)

    @cached_property
    def row_of_token(self) -> torch.Tensor:
        """`(num_tokens,)` input row of each token, for pooling per row."""
        rows = torch.arange(self.batch_size, device=self.device)
        return rows.repeat_interleave(self.row_lengths)

    @cached_property
    def row_starts(self) -> torch.Tensor:
        """`(batch_size,)` stream offset of each row's first real token (the [CLS] token)."""
        return self.row_lengths.cumsum(0) - self.row_lengths

    @cached_property
    def buckets(self) -> tuple[list[AttentionBucket], torch.Tensor | None]:
        """Length buckets covering every document once, and the permutation that puts the
        concatenated real outputs of the buckets back into stream order (None: already in order)."""
        return _bucket_documents(self.doc_lengths, self.cu_seqlens.tolist(), self.device)


def document_band_mask(doc_ids: torch.Tensor, half_window: int | None) -> torch.Tensor:
    """`(batch, 1, seq, seq)` attention mask from `(batch, seq)` document ids (0 at padding): a query sees
    the keys of its own document, within `|i - j| <= half_window` on local layers. Padding queries see
    padding keys only (never a fully masked row, which would put NaNs into the backward pass)."""
    allowed = doc_ids[:, :, None] == doc_ids[:, None, :]
    if half_window is not None:
        slots = torch.arange(doc_ids.shape[1], device=doc_ids.device)
        allowed = allowed & ((slots[:, None] - slots[None, :]).abs() <= half_window)
    return allowed[:, None]


class StaticBatch:
    """The padded batch as it is, padding included in the stream: shapes follow the input's shape only.

    Used while a model is exported or traced (`torch.export`, the ONNX exporter, `torch.jit.trace`),
    where the data-dependent unpadding of `UnpaddedBatch` cannot be captured. Attention then runs on
    the padded rectangle with `document_band_mask`; outputs are zero at padding, as on the unpadded path.
    """

    is_static = True
    indices = None

    def __init__(self, real: torch.Tensor, position_ids: torch.Tensor, doc_ids: torch.Tensor):
        self.padded_real = real  # (batch, seq) bool
        self.position_ids = position_ids  # (batch * seq,)
        self.doc_ids = doc_ids  # (batch, seq), 0 at padding
        self.batch_size, self.seq_len = real.shape
        self.num_tokens = self.batch_size * self.seq_len
        self._masks: dict[int | None, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.padded_real.device

    def unpad(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(-1, *tensor.shape[2:])

    def pad(self, tensor: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        padded = tensor.reshape(self.batch_size, self.seq_len, *tensor.shape[1:])
        real = self.padded_real.view(self.batch_size, self.seq_len, *([1] * (tensor.dim() - 1)))
        return torch.where(real, padded, value)

    def unpad_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.where(self.padded_real, labels, -100).reshape(-1)

    def padded_attention_mask(self, half_window: int | None) -> torch.Tensor:
        if half_window not in self._masks:
            self._masks[half_window] = document_band_mask(self.doc_ids, half_window)
        return self._masks[half_window]

    def first_token(self, hidden: torch.Tensor) -> torch.Tensor:
        first = self.padded_real.int().argmax(dim=1)
        return hidden.view(self.batch_size, self.seq_len, -1)[torch.arange(self.batch_size, device=self.device), first]

    def mean(self, hidden: torch.Tensor) -> torch.Tensor:
        weights = self.padded_real.unsqueeze(-1).to(hidden.dtype)
        sums = (hidden.view(self.batch_size, self.seq_len, -1) * weights).sum(dim=1)
        return sums / weights.sum(dim=1).clamp(min=1)


def static_batch(attention_mask: torch.Tensor | None, batch_size: int, seq_len: int, device: torch.device,
                 position_ids: torch.Tensor | None = None) -> StaticBatch:
    """The `StaticBatch` of a padded, possibly packed batch: the same documents and positions as
    `unpad_inputs` finds (a document starts at a row's first real token or where `position_ids` is 0)."""
    if attention_mask is None:
        real = torch.ones(batch_size, seq_len, dtype=torch.bool, device=device)
    else:
        # Tells the exporter that the mask's sizes are the input's (else it only learns their products are equal).
        if not torch.jit.is_tracing():  # (the tracer records sizes as tensors)
            torch._check(attention_mask.shape[0] == batch_size)
            torch._check(attention_mask.shape[1] == seq_len)
        real = attention_mask.to(device).bool()
    first = real & (real.long().cumsum(1) == 1)
    if position_ids is None:
        positions, starts = (real.long().cumsum(1) - 1).clamp(min=0), first
    else:
        positions = position_ids.to(device).expand(batch_size, seq_len)
        starts = first | (real & (positions == 0))
    doc_ids = starts.long().cumsum(1) * real.long()
    return StaticBatch(real, positions.reshape(-1), doc_ids)


def unpad_inputs(
    attention_mask: torch.Tensor | None,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    position_ids: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
) -> UnpaddedBatch:
    """Finds the real tokens and the documents of a padded, possibly packed, batch.

    Documents are, in order of precedence: `cu_seqlens` (offsets into the stream of real tokens),
    restarts of `position_ids` at 0 within a row, or else one document per row. Without
    `position_ids`, positions restart at 0 in every document.
    """
    if attention_mask is None:
        indices = None
        row_lengths = torch.full((batch_size,), seq_len, dtype=torch.long, device=device)
    else:
        if attention_mask.shape != (batch_size, seq_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(batch_size, seq_len)}."
            )
        real = attention_mask.to(device=device).bool()
        row_lengths = real.sum(dim=1)
        indices = None if bool(real.all()) else real.reshape(-1).nonzero().squeeze(1)
    num_tokens = int(row_lengths.sum()) if indices is not None else batch_size * seq_len
    if num_tokens == 0:
        raise ValueError("attention_mask marks no real token in the batch; there is nothing to encode.")

    def to_stream(values: torch.Tensor) -> torch.Tensor:
        flat = values.to(device).expand(batch_size, seq_len).reshape(-1)
        return flat if indices is None else flat.index_select(0, indices)

    given_positions = to_stream(position_ids) if position_ids is not None else None
    if cu_seqlens is not None:
        doc_lengths = _lengths_from_cu_seqlens(cu_seqlens, num_tokens)
    else:
        starts = torch.zeros(num_tokens, dtype=torch.bool, device=device)
        row_starts = (row_lengths.cumsum(0) - row_lengths)[row_lengths > 0]
        starts[row_starts] = True
        if given_positions is not None:
            starts |= given_positions == 0
        offsets = starts.nonzero().squeeze(1).tolist() + [num_tokens]
        doc_lengths = [b - a for a, b in zip(offsets[:-1], offsets[1:])]

    if given_positions is None:
        doc_starts = torch.tensor([0] + doc_lengths[:-1], device=device).cumsum(0)
        lengths = torch.tensor(doc_lengths, device=device)
        positions = torch.arange(num_tokens, device=device) - doc_starts.repeat_interleave(lengths)
    else:
        positions = given_positions
    return UnpaddedBatch(batch_size, seq_len, indices, row_lengths, doc_lengths, positions)


def _lengths_from_cu_seqlens(cu_seqlens: torch.Tensor, num_tokens: int) -> list[int]:
    offsets = [int(x) for x in cu_seqlens.reshape(-1).tolist()]
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != num_tokens:
        raise ValueError(
            f"cu_seqlens must run from 0 to the number of real tokens ({num_tokens}), got {offsets[:4]}..."
            f"{offsets[-1:]}."
        )
    lengths = [b - a for a, b in zip(offsets[:-1], offsets[1:])]
    if min(lengths) <= 0:
        raise ValueError("cu_seqlens must be strictly increasing (every document needs at least one token).")
    return lengths


def _bucket_documents(
    doc_lengths: list[int], offsets: list[int], device: torch.device
) -> tuple[list[AttentionBucket], torch.Tensor | None]:
    if len(set(doc_lengths)) == 1:
        # Every document has the same length: the stream is already a rectangle.
        length = doc_lengths[0]
        return [AttentionBucket(len(doc_lengths), length, device, None, None, None)], None

    order = sorted(range(len(doc_lengths)), key=lambda d: -doc_lengths[d])
    groups: list[list[int]] = [[order[0]]]
    for doc in order[1:]:
        if doc_lengths[doc] >= BUCKET_LENGTH_RATIO * doc_lengths[groups[-1][0]]:
            groups[-1].append(doc)
        else:
            groups.append([doc])

    buckets, stream_order = [], []
    for docs in groups:
        length = doc_lengths[docs[0]]
        starts = torch.tensor([offsets[d] for d in docs], device=device)
        lengths = torch.tensor([doc_lengths[d] for d in docs], device=device)
        slots = torch.arange(length, device=device)
        valid = slots[None, :] < lengths[:, None]
        gather = torch.where(valid, starts[:, None] + slots[None, :], 0).reshape(-1)
        if bool(valid.all()):
            buckets.append(AttentionBucket(len(docs), length, device, gather, None, None))
            stream_order.append(gather)
        else:
            keep = valid.reshape(-1).nonzero().squeeze(1)
            buckets.append(AttentionBucket(len(docs), length, device, gather, valid, keep))
            stream_order.append(gather.index_select(0, keep))
    order_of_outputs = torch.cat(stream_order)
    if torch.equal(order_of_outputs, torch.arange(order_of_outputs.numel(), device=device)):
        return buckets, None  # documents already longest first (length-sorted batches): nothing to restore
    restore = torch.empty_like(order_of_outputs)
    restore[order_of_outputs] = torch.arange(order_of_outputs.numel(), device=device)
    return buckets, restore
