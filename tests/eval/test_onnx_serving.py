"""`rexbert export onnx`: the serving folder runs in ONNX Runtime within 1e-4 of PyTorch (hidden states and
sentence embeddings, padded batches with rows longer than the local window), and `--quantize int8` keeps the
sentence embeddings at cosine >= 0.99 to float32 on a model whose layers matter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config, with_layers_that_matter

import modeling_rexbert
from evaluation.embedding import encode, load_encoder
from evaluation.onnx_encoder import load_onnx_encoder
from rexbert.cli import main
from rexbert.onnx_export import sample_texts

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny published folder whose layers change the output a lot (attention and MLP weights scaled up from
    init, where the embeddings alone would dominate and any quantization would look harmless), and its export."""
    torch.manual_seed(0)
    model = with_layers_that_matter(modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval())
    root = tmp_path_factory.mktemp("onnx")
    model.save_pretrained(root / "model")
    assert main(["export", "onnx", "--model", str(root / "model"), "--output", str(root / "served"),
                 "--quantize", "int8"]) == 0
    return root / "model", root / "served"


def test_the_folder_holds_what_a_server_needs(exported):
    _, served = exported
    for name in ("config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json", "onnx/model.onnx",
                 "onnx/model_int8.onnx"):
        assert (served / name).is_file(), name
    assert json.loads((served / "config.json").read_text())["model_type"] == "modernbert"
    check = json.loads((served / "onnx" / "export_check.json").read_text())
    assert check["rows"] == 16 and check["max_abs_diff"] < 1e-4


def test_onnx_runtime_matches_pytorch_within_1e_4(exported):
    source, served = exported
    model, tokenizer = load_encoder(str(source), device="cpu")
    encoder, _ = load_onnx_encoder(served)
    texts = sample_texts()[:5] + ["Navy", "USB-C cable, 2 m"]  # real products up to 500+ tokens, and short rows
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] > 2 * model.config.local_attention  # local and global layers both matter
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state.numpy()
    got = encoder(**batch)[0]
    real = batch["attention_mask"].bool().numpy()
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0)
    # sentence embeddings through the shared encode(): the unpadded PyTorch path against ONNX on padded batches
    np.testing.assert_allclose(encode(encoder, tokenizer, texts, batch_size=3),
                               encode(model, tokenizer, texts, batch_size=3), atol=1e-4, rtol=0)


def test_int8_embeddings_stay_within_cosine_0_99(exported):
    source, served = exported
    model, tokenizer = load_encoder(str(source), device="cpu")
    full, _ = load_onnx_encoder(served)
    quantized, _ = load_onnx_encoder(served, "int8")
    texts = sample_texts()
    reference = encode(full, tokenizer, texts)
    int8 = encode(quantized, tokenizer, texts)
    cosine = (int8 * reference).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.99, cosine
    assert np.abs(int8 - reference).max() > 1e-3  # int8 really is another computation
    # the layers matter: the output is far from the pooled embedding lookup alone
    rows = [tokenizer(t, truncation=True, max_length=512)["input_ids"] for t in texts]
    with torch.inference_mode():
        lookup = np.stack([model.embeddings(torch.tensor(r)).mean(0).numpy() for r in rows])
    layers = (lookup * reference).sum(1) / np.linalg.norm(lookup, axis=1) / np.linalg.norm(reference, axis=1)
    assert layers.max() < 0.9, layers


def test_bad_requests_are_refused(exported, tmp_path, capsys):
    source, served = exported
    assert main(["export", "onnx", "--model", str(source), "--output", str(served)]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        load_onnx_encoder(source)
    with pytest.raises(ValueError, match="precision"):
        load_onnx_encoder(served, "int4")
