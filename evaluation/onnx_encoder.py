"""An ONNX Runtime session that `evaluation.embedding.encode` can drive like a PyTorch encoder.

`rexbert export onnx` writes a serving folder (config, tokenizer, sentence-transformers config and
`onnx/model.onnx`, plus `onnx/model_int8.onnx` with `--quantize int8`). `load_onnx_encoder(folder)` opens it:

```python
>>> from evaluation.embedding import encode, read_sentence_settings
>>> from evaluation.onnx_encoder import load_onnx_encoder
>>> encoder, tokenizer = load_onnx_encoder("rexbert-micro-onnx/")  # doctest: +SKIP
>>> vectors = encode(encoder, tokenizer, ["Navy running shoes"], pooling=read_sentence_settings(
...     "rexbert-micro-onnx/").pooling)  # doctest: +SKIP
```

The graph takes padded `input_ids` / `attention_mask` (int64) and returns `last_hidden_state`, so `encode`
runs it on the same length-sorted padded batches it gives stock ModernBERT. Needs `pip install 'rexbert[onnx]'`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

ONNX_FILES = {"float32": "onnx/model.onnx", "int8": "onnx/model_int8.onnx"}


class OnnxEncoder:
    """`encoder(input_ids=, attention_mask=)` -> `(last_hidden_state,)` from an ONNX Runtime CPU session."""

    def __init__(self, path: str | Path, config, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("ONNX Runtime is not installed: pip install 'rexbert[onnx]'") from error
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no ONNX file (write one with `rexbert export onnx`)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or _cores()
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config  # `encode` reads max_position_embeddings and hidden_size from it
        self.path = path

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[np.ndarray]:
        feeds = {"input_ids": np.asarray(input_ids, dtype=np.int64),
                 "attention_mask": np.asarray(attention_mask, dtype=np.int64)}
        return (self.session.run(["last_hidden_state"], feeds)[0],)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_onnx_encoder(folder: str | Path, precision: str = "float32", threads: int | None = None):
    """(OnnxEncoder, tokenizer) of a folder written by `rexbert export onnx`; `precision` picks
    `onnx/model.onnx` ("float32") or `onnx/model_int8.onnx` ("int8"); all cores unless `threads`."""
    from transformers import AutoConfig

    from .loading import load_tokenizer

    if precision not in ONNX_FILES:
        raise ValueError(f"precision must be one of {sorted(ONNX_FILES)}, not {precision!r}")
    folder = Path(folder)
    config = AutoConfig.from_pretrained(str(folder))
    return OnnxEncoder(folder / ONNX_FILES[precision], config, threads), load_tokenizer(str(folder))


__all__ = ["OnnxEncoder", "load_onnx_encoder", "ONNX_FILES"]
