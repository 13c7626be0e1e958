"""Published folders carry a sentence-transformers config: `SentenceTransformer(folder)` loads what the folder
says (no default model built with a "No modules.json found" message) on the stock and the remote-code path,
with the same embeddings as `rexbert embed`'s core, and the folder still loads with `AutoModel`."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.embedding import encode, load_encoder, read_sentence_settings
from modeling_rexbert.convert import convert_checkpoint
from modeling_rexbert.sentence_transformers_config import write_config

TEXTS = ["red running shoes size 10", "usb-c cable, 2 m, braided", "Navy cotton crew-neck t-shirt " * 12, "mug"]
ST_FILES = ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "config_sentence_transformers.json")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("st") / "mlm"
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval().save_pretrained(folder)
    return folder


def sentence_transformer(folder, caplog, **kwargs):
    from sentence_transformers import SentenceTransformer

    with caplog.at_level(logging.INFO, logger="sentence_transformers"):
        model = SentenceTransformer(str(folder), device="cpu", **kwargs)
    guessed = [r.getMessage() for r in caplog.records if "No modules.json" in r.getMessage()]
    assert not guessed, guessed
    return model


def test_save_pretrained_writes_the_config(saved):
    for name in ST_FILES:
        assert (saved / name).is_file(), name
    assert json.loads((saved / "sentence_bert_config.json").read_text())["max_seq_length"] == 8192
    pooling = json.loads((saved / "1_Pooling/config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert pooling["word_embedding_dimension"] == 64
    assert read_sentence_settings(saved).pooling == "mean"


def test_stock_and_remote_code_paths_agree_with_embed(saved, caplog):
    from transformers import AutoModel

    stock = sentence_transformer(saved, caplog)
    remote = sentence_transformer(saved, caplog, trust_remote_code=True)
    assert type(stock[0].auto_model).__name__ == "ModernBertModel"
    assert type(remote[0].auto_model).__name__ == "RexBertModel"
    assert stock.max_seq_length == remote.max_seq_length == 8192
    expected = stock.encode(TEXTS, batch_size=2)
    np.testing.assert_allclose(remote.encode(TEXTS, batch_size=3), expected, atol=1e-5)
    model, tokenizer = load_encoder(str(saved), device="cpu")
    np.testing.assert_allclose(encode(model, tokenizer, TEXTS, batch_size=2), expected, atol=1e-5)
    assert type(AutoModel.from_pretrained(str(saved))).__name__ == "ModernBertModel"  # still a transformers folder


def test_converted_stock_folder_carries_it(saved, tmp_path, caplog):
    from transformers import AutoModel

    out = convert_checkpoint(saved, tmp_path / "stock", to="modernbert")
    assert "auto_map" not in json.loads((out / "config.json").read_text())
    for name in ST_FILES:
        assert (out / name).is_file(), name
    stock = sentence_transformer(out, caplog)
    expected = stock.encode(TEXTS)
    np.testing.assert_allclose(expected, sentence_transformer(saved, caplog).encode(TEXTS), atol=1e-5)
    model, tokenizer = load_encoder(str(out), device="cpu")  # a stock folder runs on the RexBERT classes too
    assert type(model).__name__ == "RexBertModel"
    np.testing.assert_allclose(encode(model, tokenizer, TEXTS), expected, atol=1e-5)
    assert type(AutoModel.from_pretrained(str(out))).__name__ == "ModernBertModel"


def test_a_folders_own_config_is_kept(saved, tmp_path):
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "config.json").write_text((saved / "config.json").read_text())
    (folder / "modules.json").write_text("[]")
    assert write_config(folder) == []
    assert (folder / "modules.json").read_text() == "[]"
    assert write_config(folder, pooling="cls", max_seq_length=128, prompts={"query": "query: "}, overwrite=True)
    settings = read_sentence_settings(folder)
    assert (settings.pooling, settings.max_length, settings.prompts) == ("cls", 128, {"query": "query: "})


def test_card_push_adds_it_to_a_folder_saved_before(saved, tmp_path, capsys, monkeypatch):
    import shutil

    from model_cards.card import render_model_card
    from rexbert.cli import main

    folder = tmp_path / "old"
    shutil.copytree(saved, folder)
    for name in ST_FILES:
        (folder / name).unlink()
    render_model_card(folder, [])
    assert main(["card", "push", "--model", str(folder), "--repo-id", "me/x", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Would add the sentence-transformers config" in out
    assert not any((folder / name).exists() for name in ST_FILES)  # a dry run changes nothing
    monkeypatch.setattr("model_cards.card.push_model", lambda model, repo_id, **kw: sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()))
    assert main(["card", "push", "--model", str(folder), "--repo-id", "me/x"]) == 0
    out = capsys.readouterr().out
    assert "Added the sentence-transformers config" in out
    assert all(f"  {name}  " in out for name in ST_FILES)  # and they are in the upload
