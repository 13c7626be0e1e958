"""Sentence embeddings of texts: the core that `rexbert embed`, `rexbert eval retrieval` and the benchmarks share.

`encode(model, tokenizer, texts, batch_size)` returns one float32 vector per text, in input order. Texts are
tokenized without truncation first, so that rows longer than `max_length` are counted (`EncodeStats`) and
cut to `max_length` tokens (keeping the final [SEP]) instead of silently; batches are formed from texts of
similar length. A RexBERT encoder (`RexBertModel`) runs the unpadded path: one stream of real tokens per
batch with `cu_seqlens`, never a padding token; any other model (`model(input_ids=, attention_mask=)` with a
`last_hidden_state` or a first output, e.g. stock ModernBERT or an ONNX Runtime session wrapped as such) is
run on padded batches. Pooling is what the folder's sentence-transformers config says (`mean` by default,
the same as sentence-transformers for a ModernBERT folder without one): the mean (or the first, `cls`)
of each row's real tokens, special tokens included, as sentence-transformers computes it.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .cpu_runtime import keep_freed_memory, use_all_cores
from .cpu_workers import can_fork, encode_batches_in_workers

POOLING_MODES = ("mean", "cls")


@dataclass
class EncodeStats:
    """What an `encode` call saw: rows, real tokens, and rows longer than `max_length` (cut to it)."""

    rows: int = 0
    tokens: int = 0
    truncated: int = 0
    max_length: int = 0

    def add(self, other: EncodeStats) -> None:
        self.rows += other.rows
        self.tokens += other.tokens
        self.truncated += other.truncated
        self.max_length = max(self.max_length, other.max_length)


def tokenize(tokenizer, texts: Sequence[str], max_length: int, prompt: str | None = None
             ) -> tuple[list[list[int]], int]:
    """Token ids of `prompt + text` (with the tokenizer's [CLS] ... [SEP]) and how many rows were longer than
    `max_length`; those are cut to `max_length`, their last special token kept."""
    if len(texts) == 0:
        return [], 0
    if prompt:
        texts = [prompt + text for text in texts]
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    truncated = 0
    for row, tokens in enumerate(ids):
        if len(tokens) > max_length:
            truncated += 1
            ids[row] = tokens[: max_length - 1] + tokens[-1:]
    return ids, truncated


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of `batch_size`, longest rows first (the first batch shows the memory peak)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def is_unpadded_encoder(model) -> bool:
    try:
        from modeling_rexbert import RexBertModel
    except ImportError:  # pragma: no cover - the project always has it
        return False
    return isinstance(model, RexBertModel)


def _device_of(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def _pool_unpadded(model, rows: list[list[int]], pooling: str) -> torch.Tensor:
    device = _device_of(model)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.int32)
    cu_seqlens = torch.zeros(len(rows) + 1, dtype=torch.int32)
    cu_seqlens[1:] = torch.cumsum(lengths, 0)
    # the rows' ids straight into one stream (no padded rectangle to unpad again)
    stream = torch.from_numpy(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                                          count=int(cu_seqlens[-1]))).to(device)
    state = model.encode(input_ids=stream, cu_seqlens=cu_seqlens.to(device))
    hidden = state.last_hidden_state.float()
    starts = cu_seqlens[:-1].to(device).long()
    if pooling == "cls":
        return hidden.index_select(0, starts)
    row_of_token = torch.repeat_interleave(torch.arange(len(rows), device=device), lengths.to(device).long())
    sums = hidden.new_zeros(len(rows), hidden.shape[-1]).index_add_(0, row_of_token, hidden)
    return sums / lengths.to(device).unsqueeze(-1).float()


def _pool_padded(model, rows: list[list[int]], pooling: str, pad_id: int) -> torch.Tensor:
    device = _device_of(model)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    output = model(input_ids=ids.to(device), attention_mask=mask.to(device))
    hidden = getattr(output, "last_hidden_state", None)
    hidden = (output[0] if hidden is None else hidden)
    hidden = torch.as_tensor(hidden).float()
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.to(hidden.device).unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def encode_ids(model, rows: list[list[int]], batch_size: int = 32, pooling: str = "mean",
               normalize: bool = False, pad_id: int = 0,
               on_batch: Callable[[int, int], None] | None = None, workers: int = 1) -> np.ndarray:
    """(len(rows), hidden) float32 embeddings of already tokenized rows, in their order; length-sorted
    batches; `on_batch(rows, tokens)` after each batch (progress bars). `workers > 1` on CPU: up to that many
    forked processes of one thread each, whole batches each, as many as fit in memory (`evaluation.cpu_workers`;
    Linux), the same vectors."""
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, not {pooling!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if is_unpadded_encoder(model):
        encode_batch = functools.partial(_pool_unpadded, model, pooling=pooling)
    else:
        encode_batch = functools.partial(_pool_padded, model, pooling=pooling, pad_id=pad_id)
    batches = length_sorted_batches([len(r) for r in rows], batch_size)
    if workers > 1 and len(batches) > 1 and _device_of(model).type == "cpu" and can_fork():
        results = encode_batches_in_workers(encode_batch, rows, batches, workers)
    else:
        results = ((batch, encode_batch([rows[i] for i in batch])) for batch in batches)
    vectors: np.ndarray | None = None
    with torch.inference_mode():
        for batch, pooled in results:
            pooled = torch.as_tensor(pooled)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            pooled = pooled.cpu().numpy()
            if vectors is None:
                vectors = np.zeros((len(rows), pooled.shape[-1]), dtype=np.float32)
            vectors[batch] = pooled
            if on_batch is not None:
                on_batch(len(batch), sum(len(rows[i]) for i in batch))
    if vectors is None:
        hidden = getattr(getattr(model, "config", None), "hidden_size", 0)
        return np.zeros((0, hidden), dtype=np.float32)
    return vectors


def encode(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
           pooling: str = "mean", normalize: bool = False, prompt: str | None = None,
           stats: EncodeStats | None = None, on_batch: Callable[[int, int], None] | None = None,
           workers: int = 1) -> np.ndarray:
    """(len(texts), hidden) float32 embeddings of `texts` in input order.

    `model`: a `RexBertModel` (unpadded path) or any encoder called as `model(input_ids=, attention_mask=)`;
    `max_length`: tokens per row including [CLS]/[SEP] (default: the model config's
    `max_position_embeddings`); longer rows are cut to it and counted in `stats.truncated`.
    `prompt` is prepended to every text (as sentence-transformers' `prompt=`); `workers`: see `encode_ids`."""
    if max_length is None:
        max_length = int(getattr(getattr(model, "config", None), "max_position_embeddings", 0) or 512)
    rows, truncated = tokenize(tokenizer, texts, max_length, prompt)
    if stats is not None:
        stats.add(EncodeStats(rows=len(rows), tokens=sum(map(len, rows)), truncated=truncated,
                              max_length=max_length))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return encode_ids(model, rows, batch_size, pooling, normalize, pad_id, on_batch, workers)


@dataclass(frozen=True)
class SentenceSettings:
    """What a folder's sentence-transformers config says about how to embed with it (defaults if it has none)."""

    pooling: str = "mean"
    max_length: int | None = None
    normalize: bool = False
    prompts: dict | None = None


SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def _json_key(path: Path, key: str):
    return json.loads(path.read_text()).get(key) if path.is_file() else None


def read_sentence_settings(folder: str | Path) -> SentenceSettings:
    """Pooling, max_seq_length, normalisation and prompts from a local folder's sentence-transformers files
    (modules.json, sentence_bert_config.json, <pooling>/config.json, config_sentence_transformers.json)."""
    folder = Path(folder)
    if not (folder / "modules.json").is_file():
        return SentenceSettings()
    modules = json.loads((folder / "modules.json").read_text())
    pooling, normalize = "mean", False
    unsupported = [m.get("type", "") for m in modules if not m.get("type", "").endswith(SUPPORTED_MODULES)]
    if unsupported:
        raise ValueError(f"{folder}: sentence-transformers modules {unsupported} are not supported here (only "
                         f"{', '.join(SUPPORTED_MODULES)}); embed with SentenceTransformer({str(folder)!r}).encode.")
    for module in modules:
        kind = module.get("type", "")
        if kind.endswith("Pooling"):
            config = json.loads((folder / module.get("path", "") / "config.json").read_text())
            mode = config.get("pooling_mode") or ("cls" if config.get("pooling_mode_cls_token") else "mean")
            if mode == "mean_tokens":
                mode = "mean"
            if mode not in POOLING_MODES:
                raise ValueError(f"{folder}: pooling {mode!r} is not supported here (only {POOLING_MODES}).")
            pooling = mode
        elif kind.endswith("Normalize"):
            normalize = True
    max_length = None
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.is_file():
        max_length = json.loads(bert_config.read_text()).get("max_seq_length")
    if max_length is None:  # as sentence-transformers: the tokenizer's length, within the model's positions
        limits = [_json_key(folder / "tokenizer_config.json", "model_max_length"),
                  _json_key(folder / "config.json", "max_position_embeddings")]
        limits = [int(n) for n in limits if isinstance(n, (int, float)) and 0 < n < 1e9]
        max_length = min(limits) if limits else None
    prompts = None
    st_config = folder / "config_sentence_transformers.json"
    if st_config.is_file():
        prompts = json.loads(st_config.read_text()).get("prompts") or None
    return SentenceSettings(pooling, max_length, normalize, prompts)


QUANTIZE_MODES = ("int8",)


def quantize_int8(model):
    """The model with dynamic int8 `nn.Linear` layers (int8 weights, activations quantized per batch at run time;
    embeddings, norms, attention and GELU stay float32), made once and reused for every batch. CPU only: torch's
    dynamic int8 kernels (fbgemm / oneDNN, VNNI where the CPU has it). The RexBERT classes keep their unpadded path."""
    import warnings

    if _device_of(model).type != "cpu":
        raise ValueError("quantize='int8' runs on CPU only (torch's dynamic int8 kernels); use --device cpu, or bf16 "
                         "on CUDA (the default there).")
    with warnings.catch_warnings():  # torch 2.13 points to torchao; the eager kernels are the ones measured here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def load_encoder(name: str, device: str | None = None, trust_remote_code: bool = False, threads: int | None = None,
                 quantize: str | None = None):
    """(encoder, tokenizer) of a model folder or Hub id, ready for `encode`: a RexBERT or stock ModernBERT
    folder on the installed `RexBertModel` (the unpadded path; on CUDA in bf16 with the varlen attention
    backend), any other on `AutoModel`. On CPU, torch uses all cores (or `threads`); `quantize="int8"`:
    dynamic int8 linear layers (`quantize_int8`, CPU)."""
    if quantize not in (None, *QUANTIZE_MODES):
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES} or None, not {quantize!r}")
    from .loading import is_rexbert_family, load_model_config, load_tokenizer

    device = device or ("cuda" if torch.cuda.is_available() and not quantize else "cpu")
    tokenizer = load_tokenizer(name, trust_remote_code)
    config = load_model_config(name, trust_remote_code)
    kwargs = {}
    if device.startswith("cuda"):
        kwargs = {"dtype": torch.bfloat16}
    else:
        use_all_cores(threads)
        keep_freed_memory()
    if is_rexbert_family(config):
        from modeling_rexbert import RexBertConfig, RexBertModel

        if device.startswith("cuda"):
            kwargs["attn_implementation"] = "flash_attention_2"  # varlen: flash-attn or torch's varlen_attn
        rex_config = RexBertConfig.from_dict(config.to_dict()) if config.model_type != "rexbert" else None
        if rex_config is not None:  # a stock ModernBERT folder: same weights, RexBERT classes
            kwargs["config"] = rex_config
        model = RexBertModel.from_pretrained(name, **kwargs)
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(name, trust_remote_code=trust_remote_code, **kwargs)
    model = model.to(device).eval()
    return (quantize_int8(model) if quantize == "int8" else model), tokenizer
