"""Exporting RexBERT: torch.export (static and dynamic shapes) and ONNX run with ONNX Runtime, outputs
within 1e-4 of the eager (unpadded) model on padded batches with documents longer than the local window."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from twins import batch, real, twins

from modeling_rexbert.export import OUTPUT_NAMES, export_onnx, export_program

ATOL = 1e-4
HEADS = ["Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering"]


def eager_outputs(model, ids, mask) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    suffix = "Model" if type(model).__name__ == "RexBertModel" else type(model).__name__.removeprefix("RexBert")
    return [out[name] for name in OUTPUT_NAMES[suffix]]


def assert_close(exported, expected, mask=None):
    for got, want in zip(exported, expected):
        got = torch.as_tensor(got)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
        if mask is not None and want.dim() >= 2 and want.shape[:2] == mask.shape:
            assert torch.all(want[~mask.bool()] <= 0)  # padding: zeros (QA: the lowest value) in both


@pytest.mark.parametrize("head", HEADS)
def test_torch_export_static_shapes(head):
    model, _ = twins(head if head != "Model" else "ForMaskedLM")
    model = model.model if head == "Model" else model
    ids, mask = batch()  # 29 tokens and shorter rows, local window 8
    program = export_program(model, batch_size=ids.shape[0], seq_len=ids.shape[1], dynamic=False)
    assert_close(program.module()(ids, mask), eager_outputs(model, ids, mask), mask)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_torch_export_dynamic_shapes_runs_other_batches(pooling):
    model, stock = twins("ForSequenceClassification", classifier_pooling=pooling, num_labels=3)
    program = export_program(model, batch_size=2, seq_len=16, dynamic=True)
    for lengths, left in (([29, 6, 17, 1], False), ([40, 3], True), ([9], False)):
        ids, mask = batch(lengths, seed=len(lengths), left=left)
        expected = eager_outputs(model, ids, mask)
        assert_close(program.module()(ids, mask), expected)
        if not left:  # and the eager model is stock's (left padding: see README, deliberate differences)
            with torch.no_grad():
                theirs = stock(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(expected[0], theirs, atol=ATOL, rtol=0)


def test_torch_export_of_the_encoder_matches_stock_on_real_tokens():
    model, stock = twins()
    program = export_program(model.model, dynamic=True)
    ids, mask = batch([33, 12, 5], seed=7)
    with torch.no_grad():
        theirs = stock.model(input_ids=ids, attention_mask=mask).last_hidden_state
    (ours,) = program.module()(ids, mask)
    torch.testing.assert_close(real(ours, mask), real(theirs, mask), atol=ATOL, rtol=0)


def test_packed_documents_export_with_position_ids_and_cu_seqlens_is_a_clear_error():
    model, _ = twins()
    ids, _ = batch([12, 9])
    packed = torch.cat([ids[0, :12], ids[1, :9]])[None]
    positions = torch.cat([torch.arange(12), torch.arange(9)])[None]

    class Packed(torch.nn.Module):
        def __init__(self, inner, **kwargs):
            super().__init__()
            self.inner, self.kwargs = inner, kwargs

        def forward(self, ids, positions):
            return self.inner(input_ids=ids, position_ids=positions, **self.kwargs).logits

    program = torch.export.export(Packed(model).eval(), (packed, positions))
    with torch.no_grad():
        expected = model(input_ids=packed, position_ids=positions).logits
    torch.testing.assert_close(program.module()(packed, positions), expected, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="cu_seqlens cannot be exported"):
        torch.export.export(Packed(model, cu_seqlens=torch.tensor([0, 12, 21])).eval(), (packed, positions))


def test_jit_trace_takes_the_padded_path():
    model, _ = twins()
    ids, mask = batch()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, i, m):
            return self.inner(input_ids=i, attention_mask=m).logits

    with torch.no_grad():
        traced = torch.jit.trace(Logits().eval(), (ids, mask), check_trace=False)
        torch.testing.assert_close(traced(ids, mask), eager_outputs(model, ids, mask)[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("head", ["Model", "ForQuestionAnswering"])
def test_onnx_export_runs_in_onnx_runtime(tmp_path, head):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'rexbert[onnx]')")
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'rexbert[onnx]')")
    model, _ = twins("ForMaskedLM" if head == "Model" else head)
    model = model.model if head == "Model" else model
    path = export_onnx(model, tmp_path / "model.onnx", batch_size=2, seq_len=16)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert tuple(o.name for o in session.get_outputs()) == OUTPUT_NAMES[head]
    for lengths in ([29, 6, 17, 1], [11]):  # other batch sizes and lengths than exported with
        ids, mask = batch(lengths, seed=len(lengths))
        outputs = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        assert all(isinstance(o, np.ndarray) for o in outputs)
        assert_close(outputs, eager_outputs(model, ids, mask), mask)


def test_export_program_loads_a_saved_folder_with_its_head(tmp_path):
    model, _ = twins("ForTokenClassification", num_labels=5)
    model.save_pretrained(tmp_path / "folder")
    program = export_program(tmp_path / "folder", dynamic=True)
    ids, mask = batch(seed=9)
    assert_close(program.module()(ids, mask), eager_outputs(model, ids, mask), mask)
    with pytest.raises(TypeError, match="not a RexBERT model class"):
        export_program(torch.nn.Linear(2, 2))
