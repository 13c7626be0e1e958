"""Exporting RexBERT models: `torch.export` programs and ONNX files (torch's dynamo exporter).

While exporting, the models keep the batch padded (`unpadding.StaticBatch`): shapes follow the input's
shape only, so the batch size and sequence length can stay dynamic. Outputs equal the eager (unpadded)
model's, zeros at padding included.

```python
>>> from modeling_rexbert.export import export_onnx
>>> export_onnx("rexbert-micro/", "rexbert-micro.onnx")  # doctest: +SKIP
```

Not part of the remote code (it needs `onnx` and `onnxscript`: `pip install 'rexbert[onnx]'`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from .convert import TASKS, _read_config, _task_of

# task suffix -> names of the outputs the exported graph returns, in order
OUTPUT_NAMES = {
    "Model": ("last_hidden_state",),
    "ForMaskedLM": ("logits",),
    "ForSequenceClassification": ("logits",),
    "ForTokenClassification": ("logits",),
    "ForQuestionAnswering": ("start_logits", "end_logits"),
    "ForMultipleChoice": ("logits",),
}
INPUT_NAMES = ("input_ids", "attention_mask")


class _TensorOutputs(torch.nn.Module):
    """`model(input_ids, attention_mask)` -> a tuple of the task's output tensors (exporters want tensors)."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return tuple(out[name] for name in self.names)


def _task_suffix(model: torch.nn.Module) -> str:
    for suffix, cls in TASKS.items():
        if type(model) is cls:
            return suffix
    raise TypeError(f"{type(model).__name__} is not a RexBERT model class; expected one of "
                    f"{[cls.__name__ for cls in TASKS.values()]}.")


def load_for_export(model_or_folder) -> torch.nn.Module:
    """A RexBERT model in eval mode: the model itself, or the head a folder (or Hub id) was saved with."""
    if isinstance(model_or_folder, torch.nn.Module):
        return model_or_folder.eval()
    task = _task_of(_read_config(model_or_folder), model_or_folder)
    return TASKS[task].from_pretrained(str(model_or_folder)).eval()


def example_inputs(model: torch.nn.Module, batch_size: int = 2, seq_len: int = 16) -> tuple[torch.Tensor, ...]:
    """Token ids and a right-padded attention mask (the last row shorter), the shapes `export_*` trace with."""
    shape = (batch_size, 2, seq_len) if _task_suffix(model) == "ForMultipleChoice" else (batch_size, seq_len)
    ids = torch.randint(5, model.config.vocab_size, shape, generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[-1, ..., seq_len // 2:] = 0
    return ids, mask


def _dynamic_shapes(model: torch.nn.Module, dynamic: bool):
    if not dynamic:
        return None
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("seq", min=2, max=model.config.max_position_embeddings)
    if _task_suffix(model) == "ForMultipleChoice":
        dims = {0: batch, 1: torch.export.Dim("choices", min=1, max=64), 2: seq}
    else:
        dims = {0: batch, 1: seq}
    return {"input_ids": dims, "attention_mask": dims}


def export_program(model_or_folder, batch_size: int = 2, seq_len: int = 16, dynamic: bool = True):
    """A `torch.export.ExportedProgram` of `forward(input_ids, attention_mask)` -> the task's output tensors
    (see OUTPUT_NAMES); batch size and sequence length dynamic unless `dynamic=False`."""
    model = load_for_export(model_or_folder)
    wrapper = _TensorOutputs(model, OUTPUT_NAMES[_task_suffix(model)]).eval()
    return torch.export.export(wrapper, example_inputs(model, batch_size, seq_len),
                               dynamic_shapes=_dynamic_shapes(model, dynamic))


def export_onnx(model_or_folder, path: str | Path, batch_size: int = 2, seq_len: int = 16, dynamic: bool = True,
                opset_version: int | None = None) -> Path:
    """Writes an ONNX file of `forward(input_ids, attention_mask)` for a RexBERT model or saved folder.

    Inputs `input_ids` and `attention_mask` (int64, `(batch, seq)`, or `(batch, choices, seq)` for multiple
    choice); outputs named as in OUTPUT_NAMES (e.g. `last_hidden_state`, `logits`). Batch size and sequence
    length are dynamic unless `dynamic=False`. Run it with ONNX Runtime:
    `onnxruntime.InferenceSession(str(path)).run(None, {"input_ids": ..., "attention_mask": ...})`.
    """
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:  # torch's dynamo exporter needs both
        raise ImportError(f"export_onnx needs {' and '.join(missing)}: pip install 'rexbert[onnx]'")
    model = load_for_export(model_or_folder)
    names = OUTPUT_NAMES[_task_suffix(model)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(
        _TensorOutputs(model, names).eval(), example_inputs(model, batch_size, seq_len), dynamo=True,
        input_names=list(INPUT_NAMES), output_names=list(names), dynamic_shapes=_dynamic_shapes(model, dynamic),
        opset_version=opset_version, optimize=True, verbose=False,
    )
    program.save(str(path))
    return path


__all__ = ["export_onnx", "export_program", "example_inputs", "load_for_export", "OUTPUT_NAMES", "INPUT_NAMES"]
